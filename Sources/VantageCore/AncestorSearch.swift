import Foundation

extension URL {
    /// The nearest of this folder and its ancestors (up to six levels) that holds `relative`: where a binary finds
    /// the files it ships with (`python/panoramasdk` beside a build's `.build/…/vantage`, or
    /// `share/vantage/python/…` beside an installed `bin/vantage`). Nil when none does.
    public func ancestor(containing relative: String) -> URL? {
        var dir = standardizedFileURL
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(relative).path) { return dir }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }
}
