import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import SystemSupport

/// Where the central store is and how to reach it: a `postgresql://` URL without a password
/// (`postgresql://esafety@db.trust.example:5432/esafety?sslmode=verify-full&sslrootcert=FILE`,
/// or `postgresql://esafety@/esafety?host=/run/postgresql` for a Unix socket), and the
/// password from a file only this account may read (or systemd's credential
/// `postgres-password`), never from the command line.
public struct CentralDatabase: Sendable, CustomStringConvertible {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public var user: String
    public var host: String?
    public var port = 5432
    public var socketDirectory: String?
    public var database: String
    public var sslMode = "disable"
    public var rootCertificate: String?
    var password: String?

    /// The URL without anything secret, for logs and errors.
    public var description: String {
        let place = socketDirectory.map { "\($0)/.s.PGSQL.\(port)" } ?? "\(host ?? "localhost"):\(port)"
        return "postgresql://\(user)@\(place)/\(database)"
    }

    public init(url: String, passwordFile: String? = nil) throws(Failure) {
        guard let components = URLComponents(string: url), ["postgresql", "postgres"].contains(components.scheme)
        else { throw Failure("\(url.prefix(80)): not a postgresql:// URL") }
        if components.password != nil {
            throw Failure(
                "the URL holds a password; give it in a file (--password-file, mode 0600) or as the systemd "
                    + "credential postgres-password, never on the command line"
            )
        }
        user = components.user ?? "esafety"
        host = components.host.flatMap { $0.isEmpty ? nil : $0 }
        port = components.port ?? 5432
        database = String(components.path.drop { $0 == "/" })
        if database.isEmpty { database = user }
        for item in components.queryItems ?? [] {
            switch item.name {
            case "host": socketDirectory = item.value
            case "sslmode": sslMode = item.value ?? "disable"
            case "sslrootcert": rootCertificate = item.value
            default: throw Failure("\(item.name): not a setting esafety understands (host, sslmode, sslrootcert)")
            }
        }
        guard ["disable", "require", "verify-full"].contains(sslMode) else {
            throw Failure("sslmode=\(sslMode): use verify-full (or require, or disable on a Unix socket)")
        }
        if sslMode == "verify-full" && rootCertificate == nil {
            throw Failure("sslmode=verify-full needs sslrootcert=FILE: the CA that signed the server's certificate")
        }
        let credentials = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"].map { $0 + "/postgres-password" }
        if let file = passwordFile ?? credentials.flatMap({ FileSystem.exists($0) ? $0 : nil }) {
            var st = stat()
            guard stat(file, &st) == 0 else { throw Failure("\(file): cannot read the password file") }
            if passwordFile != nil && st.st_mode & 0o077 != 0 {
                throw Failure(
                    "\(file): mode \(String(st.st_mode & 0o777, radix: 8)): a password file must be 0600 or 0400"
                )
            }
            do {
                password = try FileSystem.readText(file).trimmingCharacters(in: .newlines)
            } catch { throw Failure("\(file): cannot read the password file: \(error)") }
        }
    }

    /// One connection, authenticated.
    /// Runs `work` on a connection of its own and closes it (PostgreSQL told, the socket shut)
    /// before returning or throwing: a command's process may exit right after.
    public func withConnection<T: Sendable>(
        logger: Logger,
        _ work: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let c = try await connect(logger: logger)
        do {
            let result = try await work(c)
            try? await c.close()
            return result
        } catch {
            try? await c.close()
            throw error
        }
    }

    public func connect(logger: Logger) async throws -> PostgresConnection {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)",
                username: user,
                password: password,
                database: database
            )
        } else {
            var tls = PostgresConnection.Configuration.TLS.disable
            if sslMode != "disable" {
                var t = TLSConfiguration.makeClientConfiguration()
                if sslMode == "verify-full", let rootCertificate {
                    t.trustRoots = .file(rootCertificate)
                    t.certificateVerification = .fullVerification
                } else {
                    t.certificateVerification = .none
                }
                tls = .require(try NIOSSLContext(configuration: t))
            }
            configuration = .init(
                host: host ?? "localhost",
                port: port,
                username: user,
                password: password,
                database: database,
                tls: tls
            )
            if sslMode == "verify-full" { configuration.options.tlsServerName = host }
        }
        return try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(),
            configuration: configuration,
            id: Int.random(in: 1...Int(Int32.max)),
            logger: logger
        ).get()
    }
}

/// Runs async work from a synchronous command, and returns its result or error.
public func runBlocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.set(.success(try await work())) } catch { box.set(.failure(error)) }
        done.signal()
    }
    done.wait()
    return try box.get().get()
}

final class ResultBox<T: Sendable>: @unchecked Sendable {
    private var value: Result<T, any Error>?
    private let lock = NSLock()
    func set(_ r: Result<T, any Error>) { lock.withLock { value = r } }
    func get() -> Result<T, any Error> { lock.withLock { value! } }
}

/// A connection and its logger handed to work run on it (`runBlocking`).
public struct PostgresConnectionBox: @unchecked Sendable {
    public let connection: PostgresConnection
    public let logger: Logger
    public init(connection: PostgresConnection, logger: Logger) {
        (self.connection, self.logger) = (connection, logger)
    }
}
