import ArgumentParser
import Central
import Console
import Daemon
import Foundation
import Glibc
import Hummingbird
import HummingbirdTLS
import Logging
import NIOSSL
import Synchronization
import SystemSupport

struct WebCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract:
            "The safeguarding console: a web page for the DSL and the coordinator (serve), and its accounts (user).",
        subcommands: [WebServeCommand.self, WebUserCommand.self],
        defaultSubcommand: WebServeCommand.self
    )
}

struct WebServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the console (its own process: esafetyd has no network).",
        discussion: """
            Listens on loopback or a Unix socket; put it behind a reverse proxy for HTTPS (see
            docs/CONSOLE.md) and give --secure there. Accounts: `esafety web user add`. For a trust,
            --central serves the central store (a role granted `esafety central grant --as console`),
            each account limited by the database to its --site(s).
            """
    )

    @OptionGroup var log: LogOption
    @OptionGroup var central: CentralStoreOption
    @Option(
        name: .customLong("query-timeout"),
        help: ArgumentHelp(
            "With --central: seconds a question to the store may take before it is stopped and the page says "
                + "how to narrow it.",
            valueName: "seconds"
        )
    )
    var queryTimeout = 15.0
    @Option(help: ArgumentHelp("HOST:PORT, or unix:PATH.", valueName: "address")) var listen = "127.0.0.1:8080"
    @Option(help: ArgumentHelp("The accounts file.", valueName: "file")) var accounts = WebUserCommand.defaultAccounts
    @Option(
        name: .customLong("access-log"),
        help: ArgumentHelp(
            "Where every view is recorded. Default: console-access.log beside the incident log.",
            valueName: "file"
        )
    )
    var accessLog: String?
    @Flag(help: "The console is reached over HTTPS (its reverse proxy): Secure cookies and HSTS.") var secure = false
    @Option(
        name: .customLong("tls-certificate"),
        help: ArgumentHelp("Serve HTTPS itself with this certificate chain (PEM); needs --tls-key.", valueName: "file")
    )
    var tlsCertificate: String?
    @Option(
        name: .customLong("tls-key"),
        help: ArgumentHelp("The certificate's private key (PEM; readable by its owner only).", valueName: "file")
    )
    var tlsKey: String?
    @Option(
        name: .customLong("pam-service"),
        help: ArgumentHelp(
            "The PAM service that checks `pam` accounts' passwords (/etc/pam.d/NAME).",
            valueName: "name"
        )
    )
    var pamService = "esafety-web"
    @Option(help: "The report's title (e.g. the school's name).") var title = "E-safety report"
    @Option(help: ArgumentHelp("Minutes of inactivity that end a session.", valueName: "minutes")) var idle = 30
    @Option(help: ArgumentHelp("esafetyd's control socket, for the health page.", valueName: "path"))
    var controlSocket: String?

    func validate() throws {
        guard idle >= 1 && idle <= 24 * 60 else { throw ValidationError("--idle must be 1 to 1440 minutes") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-certificate and --tls-key go together")
        }
        guard queryTimeout >= 0.01 && queryTimeout <= 600 else {
            throw ValidationError("--query-timeout must be 0.01 to 600 seconds")
        }
        guard Self.address(listen) != nil else {
            throw ValidationError("--listen must be HOST:PORT or unix:PATH, not '\(listen)'")
        }
    }

    static func address(_ text: String) -> BindAddress? {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            return path.isEmpty ? nil : .unixDomainSocket(path: path)
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : .hostname(host, port: port)
    }

    /// The certificate and key for HTTPS served here (TLS 1.2 or later), checked before
    /// anything listens: a key others may read is refused, as a password file is.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard let certificate = tlsCertificate, let key = tlsKey else { return nil }
        var st = stat()
        guard stat(key, &st) == 0 else {
            throw CommandFailure("\(key): cannot read the TLS key: \(String(cString: strerror(errno)))", status: 2)
        }
        if st.st_mode & 0o077 != 0 {
            throw CommandFailure(
                "\(key): the TLS key may be read by others (mode \(String(st.st_mode & 0o777, radix: 8))); "
                    + "chmod 0600 it",
                status: 2
            )
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw CommandFailure("\(certificate): no certificate in it", status: 2) }
            var c = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain,
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
            c.minimumTLSVersion = .tlsv12
            return c
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("\(certificate), \(key): cannot load the certificate and key: \(error)", status: 2)
        }
    }

    func run() throws {
        let resolved = try log.resolve()
        let logFolder = resolved.path.lastIndex(of: "/").map { String(resolved.path[..<$0]) } ?? "."
        var settings = ConsoleServer.Settings(
            logPath: resolved.path,
            group: resolved.group,
            accountsPath: accounts,
            accessLogPath: accessLog ?? logFolder + "/console-access.log",
            countersPath: resolved.configuration.countersPath
        )
        settings.central = try central.database()
        settings.centralTimeout = queryTimeout
        settings.secure = secure || tlsCertificate != nil
        settings.pamService = pamService
        settings.title = title
        settings.limits.idle = Double(idle) * 60
        let control = controlSocket ?? resolved.configuration.controlSocket
        settings.health = {
            guard let answer = try? ControlClient.send("status", to: control),
                let status = try? StatusReport(json: answer)
            else { return "esafetyd does not answer on \(control): it is stopped, or this account may not ask it." }
            return status.text
        }
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "esafety-web")
        logger.logLevel = .info
        let server = ConsoleServer(settings: settings, logger: logger)
        let listen = self.listen
        let tls = try tlsConfiguration()
        let scheme = tls == nil ? "http" : "https"
        let app = Application(
            router: server.router(),
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: Self.address(listen)!, serverName: nil),
            onServerRunning: { channel in
                if listen.hasPrefix("unix:") {
                    chmod(String(listen.dropFirst(5)), 0o660)
                    FileOutput.stderr("esafety web: listening on \(listen)\n")
                } else {
                    let port = channel.localAddress?.port ?? 0
                    FileOutput.stderr("esafety web: listening on \(scheme)://\(listen.prefix { $0 != ":" }):\(port)\n")
                }
            },
            logger: logger
        )
        let failure = Mutex<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await app.runService() } catch { failure.withLock { $0 = "\(error)" } }
            done.signal()
        }
        done.wait()
        if let message = failure.withLock({ $0 }) {
            throw CommandFailure("cannot serve the console on \(listen): \(message)", status: 1)
        }
    }
}

struct WebUserCommand: ParsableCommand {
    static let defaultAccounts = "/etc/esafety/web-accounts"
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "The console's accounts: add, remove, passwd, list.",
        subcommands: [Add.self, Remove.self, Passwd.self, List.self]
    )

    struct Place: ParsableArguments {
        @Option(help: ArgumentHelp("The accounts file.", valueName: "file")) var accounts = WebUserCommand
            .defaultAccounts
        @Option(help: ArgumentHelp("The account the console runs as (it must read the file).", valueName: "name"))
        var owner = "esafety"
        var file: Accounts { Accounts(path: accounts, serviceAccount: owner) }
    }

    /// A password from the terminal (asked twice, not echoed) or one line of standard input.
    static func password() throws -> String {
        func line() -> String? { readLine(strippingNewline: true) }
        let password: String
        if isatty(0) != 0 {
            var saved = termios()
            tcgetattr(0, &saved)
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(0, TCSANOW, &quiet)
            defer {
                tcsetattr(0, TCSANOW, &saved)
                FileOutput.stderr("\n")
            }
            FileOutput.stderr("Password: ")
            let first = line() ?? ""
            FileOutput.stderr("\nAgain: ")
            guard line() == first else { throw CommandFailure("the two passwords differ; nothing changed", status: 2) }
            password = first
        } else {
            password = line() ?? ""
        }
        guard password.count >= 10 else {
            throw CommandFailure("the password must be at least 10 characters; nothing changed", status: 2)
        }
        return password
    }

    static func checked(_ name: String) throws -> String {
        guard Accounts.validName(name) else {
            throw ValidationError("a name is 1 to 64 letters, digits, '.', '_', '@' or '-', not '\(name)'")
        }
        return name
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Add an account; the password is read from the terminal or standard input, or with --pam "
                + "checked by the school's directory through PAM."
        )
        @OptionGroup var place: Place
        @Argument(help: "The account's name.") var name: String
        @Option(help: "dsl, coordinator, it (health only) or governor (anonymised reports only).")
        var role: String
        @Option(
            help: ArgumentHelp(
                "A site the account may see in a trust's console (repeatable; * for every site); a school's own "
                    + "console ignores it."
            )
        )
        var site: [String] = []
        @Flag(help: "The password is the directory's (PAM service esafety-web, or --pam-service): none is kept here.")
        var pam = false
        func validate() throws {
            _ = try WebUserCommand.checked(name)
            for s in site where !Accounts.validSite(s) {
                throw ValidationError("--site \(s): a site is a-z, 0-9, '.', '_', '-' (or * for every site)")
            }
            guard Accounts.Role(rawValue: role) != nil else {
                throw ValidationError(
                    "--role must be one of: \(Accounts.Role.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }
        func run() throws {
            let file = place.file
            do {
                if try file.find(name) != nil {
                    throw CommandFailure(
                        "\(name) already has an account (`esafety web user passwd` changes its password)",
                        status: 1
                    )
                }
                let hash = pam ? Accounts.pam : Accounts.hash(try WebUserCommand.password())
                try file.put(
                    Accounts.Account(name: name, role: Accounts.Role(rawValue: role)!, sites: site, hash: hash)
                )
            } catch let failure as Accounts.Failure {
                throw CommandFailure(failure.description, status: 2)
            }
            print("added \(name) (\(role)\(pam ? ", password checked through PAM" : "")) to \(place.accounts)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove an account (its sessions end at its next request)."
        )
        @OptionGroup var place: Place
        @Argument(help: "The account's name.") var name: String
        func run() throws {
            do {
                guard try place.file.remove(name) else { throw CommandFailure("no account \(name)", status: 1) }
            } catch let failure as Accounts.Failure {
                throw CommandFailure(failure.description, status: 2)
            }
            print("removed \(name)")
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an account's password (its sessions end at their next request)."
        )
        @OptionGroup var place: Place
        @Argument(help: "The account's name.") var name: String
        func run() throws {
            do {
                guard var account = try place.file.find(name) else {
                    throw CommandFailure("no account \(name)", status: 1)
                }
                account.hash = Accounts.hash(try WebUserCommand.password())
                try place.file.put(account)
            } catch let failure as Accounts.Failure {
                throw CommandFailure(failure.description, status: 2)
            }
            print("changed the password of \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The accounts: name, role, sites.")
        @OptionGroup var place: Place
        func run() throws {
            do {
                for a in try place.file.all() {
                    print(
                        "\(a.name)  \(a.role.rawValue)\(a.sites.isEmpty ? "" : "  " + a.sites.joined(separator: ","))"
                    )
                }
            } catch { throw CommandFailure(error.description, status: 2) }
        }
    }
}
