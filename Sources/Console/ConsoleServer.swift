import Central
import Classifier
import Foundation
import HTTPTypes
import Hummingbird
import IncidentIndex
import Incidents
import Logging
import NIOCore
import NIOPosix
import Reports
import ServiceLifecycle
import SystemSupport

/// What each request carries: the peer's address and, once the session cookie is checked,
/// the session.
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var address: String
    public var session: Sessions.Session?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        address = source.channel.remoteAddress?.ipAddress ?? "local"
    }
}

/// The safeguarding console: routes, the session guard and the security headers. Every page
/// that shows a child's record records the view in the access log before it is sent.
public struct ConsoleServer: Sendable {
    public struct Settings: Sendable {
        public var logPath: String
        public var group: String?
        public var accountsPath: String
        public var accessLogPath: String
        public var countersPath: String
        /// Cookies marked Secure and HSTS sent: the console is reached over HTTPS (its reverse proxy).
        public var secure = false
        public var title = "E-safety report"
        public var limits = Sessions.Limits()
        /// The PAM service (`/etc/pam.d/NAME`) that checks the passwords of `pam` accounts.
        public var pamService = "esafety-web"
        /// A trust's central store, read instead of the school's log: each account sees its sites.
        public var central: CentralDatabase?
        /// Seconds a question to the central store may take before it is stopped.
        public var centralTimeout: Double = 15
        /// What `esafety status` shows, for the health page.
        public var health: @Sendable () -> String = { "esafetyd's status is not available here." }

        public init(logPath: String, group: String?, accountsPath: String, accessLogPath: String, countersPath: String)
        {
            (self.logPath, self.group, self.accountsPath) = (logPath, group, accountsPath)
            (self.accessLogPath, self.countersPath) = (accessLogPath, countersPath)
        }
    }

    public let settings: Settings
    let sessions: Sessions
    let accounts: Accounts
    let access: AccessLog
    let desk: any Desk
    let logger: Logger

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        sessions = Sessions(limits: settings.limits)
        accounts = Accounts(path: settings.accountsPath)
        access = AccessLog(path: settings.accessLogPath)
        desk =
            settings.central.map { CentralDesk(database: $0, timeout: settings.centralTimeout, logger: logger) }
            ?? LocalDesk(logPath: settings.logPath, group: settings.group)
        self.logger = logger
    }

    static let sessionCookie = "esafety_session"
    static let loginCookie = "esafety_login"

    public func router() -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: Guard(server: self))
        router.get("/static/console.css") { _, _ in Self.asset(Assets.css, type: "text/css; charset=utf-8") }
        router.get("/static/live.js") { _, _ in Self.asset(Assets.liveScript, type: "text/javascript; charset=utf-8") }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/login") { request, context in self.loginPage(request, context) }
        router.post("/login") { request, context in try await self.login(request, context) }
        router.post("/logout") { request, context in try await self.logout(request, context) }
        router.post("/site") { request, context in try await self.chooseSite(request, context) }
        router.get("/") { request, context in try await self.dashboard(request, context) }
        router.get("/incidents") { request, context in try await self.list(request, context) }
        router.post("/incidents/search") { request, context in try await self.search(request, context) }
        router.get("/incidents/{id}") { request, context in try await self.incident(request, context) }
        router.get("/incidents/{id}/person") { request, context in try await self.person(request, context) }
        router.post("/incidents/{id}/{action}") { request, context in try await self.act(request, context) }
        router.get("/api/incidents") { request, context in try await self.api(request, context) }
        router.get("/events") { request, context in try await self.events(request, context) }
        router.get("/report") { request, context in try await self.report(request, context) }
        router.get("/health") { request, context in try await self.healthPage(request, context) }
        router.get("/access") { request, context in try await self.accessPage(request, context) }
        return router
    }

    // MARK: - Responses

    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: type, .cacheControl: "private, max-age=300"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func message(
        _ title: String,
        _ text: String,
        status: HTTPResponse.Status,
        session: Sessions.Session?
    )
        -> Response
    {
        html(
            Pages.frame(Pages.Frame(title: title, session: session), "<p>\(HTML.escape(text))</p>"),
            status: status
        )
    }

    static func cookies(_ request: Request) -> [String: String] {
        var out: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let name = kv[0].trimmingCharacters(in: .whitespaces)
                if out[name] == nil { out[name] = kv[1].trimmingCharacters(in: .whitespaces) }
            }
        }
        return out
    }

    /// Whether the browser reached the console over HTTPS: configured so, or said so by the
    /// reverse proxy in front (the console listens on loopback or a Unix socket, so that
    /// header can only come from the proxy on this machine).
    func overHTTPS(_ request: Request?) -> Bool {
        settings.secure || request?.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    func cookie(_ name: String, _ value: String, path: String = "/", maxAge: Int, request: Request?) -> String {
        let secure = overHTTPS(request) ? "; Secure" : ""
        return "\(name)=\(value); Path=\(path); Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure)"
    }

    static func query(_ request: Request) -> [String: String] {
        HTML.form(Array((request.uri.query ?? "").utf8))
    }

    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        return HTML.form(body.readableBytesView)
    }

    /// The session, or a refusal for a role that may not see this (a governor, IT: no child's
    /// record; only the DSL reads the access log).
    func require(_ context: ConsoleContext, records: Bool = true, dslOnly: Bool = false) throws -> Sessions.Session {
        guard let s = context.session else { throw HTTPError(.unauthorized) }
        if (records && !s.role.readsRecords) || (dslOnly && s.role != .dsl) {
            throw HTTPError(.forbidden, message: "Your account (\(s.role.rawValue)) may not see this page.")
        }
        return s
    }

    func recordView(
        _ s: Sessions.Session,
        _ context: ConsoleContext,
        _ what: String,
        id: String? = nil,
        site: String? = nil,
        detail: String? = nil,
        shown: [IncidentView] = []
    )
        async throws
    {
        do {
            try access.record(
                AccessLog.Entry(
                    account: s.account,
                    role: s.role.rawValue,
                    what: what,
                    id: id,
                    site: site,
                    detail: detail,
                    address: context.address
                )
            )
        } catch {
            logger.error("console: \(error.description); the page was not shown")
            throw HTTPError(.internalServerError, message: "The view could not be recorded, so it is not shown.")
        }
        // A trust's store records it too, where the schools whose pupils were shown read it.
        do { try await desk.recordViews(what: what, by: s.account, shown: shown, Sessions.scope(s)) } catch {
            logger.error("console: \(error.description); the page was not shown")
            throw HTTPError(.internalServerError, message: "The view could not be recorded, so it is not shown.")
        }
    }

    func checkCSRF(_ fields: [String: String], _ s: Sessions.Session) throws {
        guard let token = fields["csrf"], Sessions.same(token, s.csrf) else {
            throw HTTPError(
                .forbidden,
                message: "The form has expired or did not come from this console; reload the page."
            )
        }
    }

    // MARK: - Login

    func loginPage(_ request: Request, _ context: ConsoleContext) -> Response {
        if let s = context.session { return .redirect(to: Self.home(s.role), type: .normal) }
        return freshLogin(message: nil, status: .ok, request: request)
    }

    /// The log-in page with its form token: the one the browser already holds (a second tab,
    /// or a request the browser makes on its own, must not invalidate the first form), else new.
    func freshLogin(
        message: String?,
        status: HTTPResponse.Status,
        name: String = "",
        request: Request? = nil
    )
        -> Response
    {
        let held = request.flatMap { Self.cookies($0)[Self.loginCookie] }.flatMap { $0.utf8.count == 43 ? $0 : nil }
        let token = held ?? Sessions.token()
        var response = Self.html(Pages.login(message: message, csrf: token, name: name), status: status)
        response.headers[.setCookie] = cookie(Self.loginCookie, token, path: "/login", maxAge: 3600, request: request)
        return response
    }

    static func home(_ role: Accounts.Role) -> String {
        switch role {
        case .dsl, .coordinator: return "/"
        case .it: return "/health"
        case .governor: return "/report"
        }
    }

    func login(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let fields = try await Self.form(request)
        guard let token = Self.cookies(request)[Self.loginCookie], let given = fields["csrf"],
            Sessions.same(token, given)
        else {
            return freshLogin(message: "The log-in form had expired; please try again.", status: .forbidden)
        }
        let name = fields["username"] ?? ""
        let password = fields["password"] ?? ""
        let address = context.address
        guard Accounts.validName(name), !password.isEmpty else {
            return freshLogin(message: "The name or the password is wrong.", status: .unauthorized, request: request)
        }
        if let wait = sessions.lockedOut(name: name, address: address) {
            try? access.record(AccessLog.Entry(account: name, role: "", what: "locked-out", address: address))
            logger.warning("console: a log-in as \(name) from \(address) refused: locked out")
            return freshLogin(
                message: "Too many failed log-ins. Try again in \(Int(wait / 60) + 1) minute(s), or ask your DSL.",
                status: .tooManyRequests,
                name: name,
                request: request
            )
        }
        let account: Accounts.Account?
        do { account = try accounts.find(name) } catch {
            logger.error("console: \(error.description)")
            return freshLogin(
                message: "Log-in is not available: the account file cannot be read.",
                status: .internalServerError
            )
        }
        // bcrypt takes a quarter of a second on purpose, PAM as long as the directory takes:
        // off the event loops.
        let service = settings.pamService
        let ok = try await NIOThreadPool.singleton.runIfActive {
            Accounts.verify(password, account, pamService: service)
        }
        guard ok, let account else {
            let locked = sessions.failed(name: name, address: address)
            try? access.record(AccessLog.Entry(account: name, role: "", what: "login-failed", address: address))
            logger.notice("console: failed log-in as \(name) from \(address)")
            if !locked.isEmpty {
                logger.warning("console: locked out \(locked.joined(separator: ", ")) after repeated failed log-ins")
            }
            return freshLogin(
                message: "The name or the password is wrong.",
                status: .unauthorized,
                name: name,
                request: request
            )
        }
        sessions.succeeded(name: name)
        // A trust's console: an account names its sites (or `*`); one without any sees nothing.
        var choices: [String] = []
        if settings.central != nil {
            guard !account.sites.isEmpty else {
                try? access.record(
                    AccessLog.Entry(account: name, role: account.role.rawValue, what: "login-no-site", address: address)
                )
                logger.notice("console: \(name) has no site in the trust's console; log-in refused")
                return freshLogin(
                    message: "Your account is not given any school in this console. Ask IT to add one (--site).",
                    status: .forbidden,
                    name: name,
                    request: request
                )
            }
            do { choices = try await desk.sites(Scope(sites: account.sites)) } catch {
                logger.error("console: \(error.description)")
                return freshLogin(
                    message: "Log-in is not available: the trust's store cannot be reached.",
                    status: .serviceUnavailable,
                    name: name,
                    request: request
                )
            }
        }
        let session = sessions.start(account, choices: choices)
        try? access.record(AccessLog.Entry(account: name, role: account.role.rawValue, what: "login", address: address))
        logger.info("console: \(name) (\(account.role.rawValue)) logged in from \(address)")
        var response = Response.redirect(to: Self.home(account.role), type: .normal)
        response.headers[values: .setCookie] = [
            cookie(Self.sessionCookie, session.token, maxAge: Int(settings.limits.absolute), request: request),
            cookie(Self.loginCookie, "", path: "/login", maxAge: 0, request: request),
        ]
        return response
    }

    func logout(_ request: Request, _ context: ConsoleContext) async throws -> Response {
        let s = try require(context, records: false)
        try checkCSRF(try await Self.form(request), s)
        sessions.end(s.token)
        try? access.record(
            AccessLog.Entry(account: s.account, role: s.role.rawValue, what: "logout", address: context.address)
        )
        var response = Response.redirect(to: "/login", type: .normal)
        response.headers[.setCookie] = cookie(Self.sessionCookie, "", maxAge: 0, request: request)
        return response
    }
}

/// Checks the session cookie on every request, sends a visitor without one to the log-in
/// page (or refuses: API, live stream, forms), turns errors into pages, and adds the security
/// headers to every response.
struct Guard: RouterMiddleware {
    let server: ConsoleServer

    func handle(
        _ request: Request,
        context: ConsoleContext,
        next: (Request, ConsoleContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        if let token = ConsoleServer.cookies(request)[ConsoleServer.sessionCookie] {
            context.session = server.sessions.session(token)
            // An account removed, or its password, role or sites changed, since login: the session ends.
            if let s = context.session {
                let account = try? server.accounts.find(s.account)
                if account?.hash != s.hash || account?.role != s.role || account?.sites != s.sites {
                    server.sessions.end(token)
                    context.session = nil
                }
            }
        }
        let path = request.uri.path
        let public_ = path == "/login" || path.hasPrefix("/static/") || path == "/favicon.ico"
        var response: Response
        if !public_ && context.session == nil {
            if request.method == .get && !path.hasPrefix("/api/") && path != "/events" {
                response = .redirect(to: "/login", type: .normal)
            } else {
                response = ConsoleServer.message("Not logged in", "Log in first.", status: .unauthorized, session: nil)
            }
        } else {
            do {
                response = try await next(request, context)
            } catch let error as HTTPError {
                let text =
                    error.body ?? (error.status == .notFound ? "There is no such page." : error.status.reasonPhrase)
                response = ConsoleServer.message(
                    error.status.reasonPhrase,
                    text,
                    status: error.status,
                    session: context.session
                )
            }
        }
        let isReport = path == "/report" && response.status == .ok
        response.headers[.contentSecurityPolicy] =
            isReport
            ? "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'none'"
            : "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("Permissions-Policy")!] = "camera=(), microphone=(), geolocation=()"
        response.headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        if !path.hasPrefix("/static/") { response.headers[.cacheControl] = "no-store" }
        if server.overHTTPS(request) { response.headers[.strictTransportSecurity] = "max-age=31536000" }
        return response
    }
}
