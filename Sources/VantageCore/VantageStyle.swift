/// The look shared by the console (`vantage server`) and the live view page of `vantage run`: colours, type, the top
/// bar, panels, tables and live tiles. The console adds its own rules after these (ConsoleAssets).
public enum VantageStyle {
    public static let css = """
        :root { --ink: #1d2330; --muted: #667085; --line: #d9dee7; --panel: #fff; --accent: #2563eb; --bad: #b42318; }
        * { box-sizing: border-box; }
        [hidden] { display: none !important; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
          background: #f4f6f9; }
        a { color: var(--accent); }
        code, pre { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
        .topbar { display: flex; align-items: center; gap: 24px; padding: 0 24px; height: 52px; background: #1f2a37;
          color: #e5e7eb; }
        .topbar a { color: #e5e7eb; text-decoration: none; }
        .brand { font-weight: 700; font-size: 17px; letter-spacing: .02em; }
        .topbar nav { display: flex; gap: 4px; flex: 1; }
        .topbar nav a { padding: 6px 10px; border-radius: 6px; }
        .topbar nav a:hover { background: #334155; }
        .topbar nav a[aria-current=page] { background: #3b4a5e; color: #fff; }
        .account { display: flex; align-items: center; gap: 8px; }
        .account .role { color: #9ca3af; font-size: 13px; }
        .logout { margin: 0; }
        main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 48px; }
        h1 { font-size: 24px; margin: 8px 0 16px; }
        h2 { font-size: 18px; margin: 24px 0 10px; }
        h3 { font-size: 15px; margin: 16px 0 8px; }
        .muted, .help { color: var(--muted); }
        .help { font-size: 13px; display: block; }
        .crumbs { margin: 0; color: var(--muted); }
        .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px;
          margin: 20px 0; }
        .panel > h2:first-child { margin-top: 0; }
        table.list { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line);
          border-radius: 8px; overflow: hidden; }
        table.list th, table.list td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line);
          vertical-align: top; }
        table.list th { background: #eef1f6; font-weight: 600; font-size: 13px; }
        table.list tr:last-child td { border-bottom: none; }
        .live-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 16px; }
        .live-grid.single { grid-template-columns: minmax(0, 960px); }
        .live-tile { margin: 0; background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
          overflow: hidden; }
        .live-frame { position: relative; background: #111827; aspect-ratio: 4 / 3; display: flex;
          align-items: center; justify-content: center; }
        .live-frame img { display: block; width: 100%; height: 100%; object-fit: contain; }
        .live-state { color: #d1d5db; margin: 0; padding: 16px; text-align: center; font-size: 14px; }
        .live-state button { margin-top: 8px; }
        .live-tile figcaption { padding: 8px 12px; display: flex; align-items: center; gap: 8px;
          justify-content: space-between; }
        .live-badge { background: #b42318; color: #fff; border-radius: 4px; padding: 0 6px; font-size: 11px;
          font-weight: 700; letter-spacing: .05em; }
        @media (max-width: 600px) {
          main { padding: 12px 12px 32px; }
          .topbar { gap: 12px; padding: 0 12px; }
          table.list { display: block; overflow-x: auto; max-width: 100%; }
        }
        """
}
