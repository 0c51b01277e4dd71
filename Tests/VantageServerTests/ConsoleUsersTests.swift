import Foundation
import Testing
import VantageAPI
import VantageServer

/// The access page's users: an admin creates a user in the browser, who then signs in with that password; the
/// API's refusals (the last admin) are shown; viewers do not see the page.
@Suite("ConsoleUsersTests")
struct ConsoleUsersTests {
    @Test(
        "an admin creates an operator in the browser and they sign in; the last admin cannot be demoted; a viewer cannot see /access",
        .enabled(if: WebDriver.isAvailable, Comment(rawValue: WebDriver.skipReason)))
    func adminManagesUsers() async throws {
        try await ConsoleTests.withServer { plane, base in
            let store = plane.store
            try await store.setUser(name: "ada", password: ConsoleUsers.password, role: .admin)
            try await store.setUser(name: "vic", password: ConsoleUsers.password, role: .viewer)
            try await WebDriver.withBrowser { browser in
                try await Self.drive(browser, base: base, store: store)
            }
        }
    }

    static func drive(_ browser: WebDriver, base: String, store: Store) async throws {
        func waitForPath(_ prefix: String) async throws {
            try await browser.waitUntil(timeout: .seconds(10), "the page \(prefix)…") {
                try await browser.currentURL().hasPrefix(base + prefix)
            }
        }
        func signOut() async throws {
            try await browser.find("form.logout button[type=submit]").click()
            try await waitForPath("/login")
        }

        try await browser.go(base + "/access")
        try await waitForPath("/login")
        try await browser.signIn("ada")
        try await waitForPath("/access")
        let adaRow = try await browser.find("#users tr[data-user=ada]")
        #expect(try await adaRow.text().contains("you"), "the signed-in admin's row is not marked")
        #expect(!(try await browser.find("#users tr[data-user=vic]").text().contains("you")))
        #expect(try await browser.findAll("#users tr[data-user=ada] button[data-delete-user]").isEmpty)

        // Two passwords that differ are refused before any request.
        let form = try await browser.find("#user-form")
        try await form.find("input[name=name]").type("otto")
        try await form.find("select[name=role]").select("operator")
        try await form.find("input[name=password]").type(ConsoleUsers.password)
        try await form.find("input[name=again]").type("another password")
        try await form.find("button[type=submit]").click()
        let formError = try await form.find(".form-error")
        try await browser.waitUntil(timeout: .seconds(10), "the mismatch") { try await formError.isDisplayed() }
        #expect(try await formError.text().contains("passwords differ"))
        #expect(try await store.listUsers().map(\.name) == ["ada", "vic"])

        try await form.find("input[name=again]").clear()
        try await form.find("input[name=again]").type(ConsoleUsers.password)
        try await form.find("button[type=submit]").click()
        let otto = try await browser.find("#users tr[data-user=otto]")
        #expect(try await otto.find("select").property("value") as? String == "operator")
        #expect(try await store.listUsers().first { $0.name == "otto" }?.role == .operator)

        // A name taken: the API's 409 is shown in the form.
        let again = try await browser.find("#user-form")
        try await again.find("input[name=name]").type("otto")
        try await again.find("input[name=password]").type(ConsoleUsers.password)
        try await again.find("input[name=again]").type(ConsoleUsers.password)
        try await again.find("button[type=submit]").click()
        let taken = try await again.find(".form-error")
        try await browser.waitUntil(timeout: .seconds(10), "the refusal") { try await taken.isDisplayed() }
        #expect(try await taken.text().contains("exists already"))

        // The last admin cannot demote themself: the API's refusal is shown and the select goes back.
        _ = try await browser.executeScript("window.confirm = () => true")
        try await browser.find("#users select[data-user-role=ada]").select("viewer")
        let refusal = try await browser.find("#user-error")
        try await browser.waitUntil(timeout: .seconds(10), "the last-admin refusal") { try await refusal.isDisplayed() }
        #expect(try await refusal.text().contains("last admin"))
        #expect(try await browser.find("#users select[data-user-role=ada]").property("value") as? String == "admin")
        #expect(try await store.listUsers().first { $0.name == "ada" }?.role == .admin)

        let severe = try await browser.severeLogs()
        #expect(severe.allSatisfy { $0.contains("409") }, "console errors besides the refused calls: \(severe)")
        try await browser.saveScreenshots("access")
        try await browser.setWindowSize(width: 375, height: 812)
        let width = try await browser.executeScript("return document.documentElement.scrollWidth") as? Int ?? 0
        #expect(width <= 376, "the access page is \(width) px wide at 375")
        try await browser.setWindowSize(width: 1280, height: 900)

        // The new operator signs in with the password the admin typed, and is refused /access.
        try await signOut()
        try await browser.signIn("otto")
        try await browser.waitUntil(timeout: .seconds(10), "otto signed in") {
            (try? await browser.find("#current-user").text()) == "otto"
        }
        try await browser.go(base + "/access")
        #expect(try await browser.pageSource().contains("only admins"))
        try await signOut()

        // A viewer cannot see /access either, nor is it in their menu.
        try await browser.signIn("vic")
        try await browser.waitUntil(timeout: .seconds(10), "vic signed in") {
            (try? await browser.find("#current-user").text()) == "vic"
        }
        #expect(!(try await browser.find("nav a[href='/access']").isDisplayed()), "a viewer's menu shows Access")
        try await browser.go(base + "/access")
        let page = try await browser.pageSource()
        #expect(page.contains("only admins") && !page.contains("user-form"))
        try await signOut()

        // The admin deletes the operator, who can no longer sign in.
        try await browser.signIn("ada")
        try await browser.waitUntil(timeout: .seconds(10), "ada signed in") {
            (try? await browser.find("#current-user").text()) == "ada"
        }
        try await browser.go(base + "/access")
        _ = try await browser.executeScript("window.confirm = () => true")
        try await browser.find("#users button[data-delete-user=otto]").click()
        try await browser.waitUntil(timeout: .seconds(10), "otto's row gone") {
            (try? await browser.findAll("#users tr[data-user=otto]"))?.isEmpty == true
        }
        #expect(try await store.listUsers().map(\.name) == ["ada", "vic"])
        #expect(try await store.login(name: "otto", password: ConsoleUsers.password, lifetime: .seconds(60)) == nil)
    }
}
