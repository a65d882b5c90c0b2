import Foundation
import Glibc
import TestSupport
import Testing

/// docs/CONSOLE.md's nginx site, installed as written in a real nginx, in a network and mount
/// namespace of its own (so it may listen on 443 and find its certificate where the document
/// says, without touching this machine's): the console behind it over HTTPS with a verified
/// certificate, its cookies Secure, HSTS sent, the live stream passed through unbuffered.
@Suite("docs/CONSOLE.md's reverse proxy in a real nginx", .serialized)
struct ConsoleProxyTests {
    static let document = repositoryRoot + "/docs/CONSOLE.md"

    /// The document's one file block: its path and its text.
    static func site() throws -> (path: String, text: String) {
        let text = try String(contentsOfFile: document, encoding: .utf8)
        var blocks: [(String, String)] = []
        var current: [Substring]? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                if let c = current, let first = c.first, first.hasPrefix("# /") {
                    blocks.append((String(first.dropFirst(2)), c.joined(separator: "\n") + "\n"))
                }
                current = current == nil ? [] : nil
            } else if current != nil {
                current!.append(line)
            }
        }
        // Every file block here is tested: the nginx site here, the PAM service by ConsolePAMTests.
        #expect(
            blocks.map(\.0) == ["/etc/nginx/sites-available/esafety", "/etc/pam.d/esafety-web"],
            "every file block here is tested"
        )
        return try #require(blocks.first { $0.0 == "/etc/nginx/sites-available/esafety" })
    }

    @Test("HTTPS through the documented nginx site: log-in, Secure cookies, HSTS, an action, the live stream")
    func throughNginx() throws {
        let nginx = try requireExecutable("/usr/sbin/nginx", package: "nginx")
        let openssl = try requireExecutable("/usr/bin/openssl", package: "openssl")
        let curl = try requireExecutable("/usr/bin/curl", package: "curl")
        let (path, text) = try Self.site()
        #expect(path == "/etc/nginx/sites-available/esafety")
        let s = try ConsoleTests.Setup()
        defer { _ = s.stop() }
        try s.send([ConsoleTests.squid("alice", host: "gambling.canary.esafety.invalid", t: 0)], incidents: 1)
        let id = s.ids()[0]
        let d = s.dir.path
        s.dir.write("site.conf", text)
        s.dir.write(
            "nginx.conf",
            """
            worker_processes 1;
            pid \(d)/nginx.pid;
            error_log \(d)/nginx-error.log;
            events {}
            http {
                client_body_temp_path \(d)/nginx-body;
                proxy_temp_path \(d)/nginx-proxy;
                fastcgi_temp_path \(d)/nginx-fastcgi;
                uwsgi_temp_path \(d)/nginx-uwsgi;
                scgi_temp_path \(d)/nginx-scgi;
                include \(d)/site.conf;
            }

            """
        )
        let (code, out) = try Child.run(
            openssl,
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=esafety.school.example",
                "-addext", "subjectAltName=DNS:esafety.school.example", "-keyout", d + "/esafety.key", "-out",
                d + "/esafety.pem",
            ]
        )
        try #require(code == 0, "\(out)")
        // Inside: loopback up, the certificate where the site file says, the console on the
        // documented 127.0.0.1:8080, nginx; then curl as a browser would, through HTTPS.
        let web = ConsoleTests.esafety
        let resolve = ["--resolve", "esafety.school.example:443:127.0.0.1", "--cacert", d + "/esafety.pem"]
        let curlArgs = ([curl, "-s", "-i"] + resolve).map { "'\($0)'" }.joined(separator: " ")
        let base = "https://esafety.school.example"
        let script = """
            set -e
            ip link set lo up
            mount -t tmpfs tmpfs /etc/ssl/certs && cp \(d)/esafety.pem /etc/ssl/certs/esafety.pem
            mount -t tmpfs tmpfs /etc/ssl/private && cp \(d)/esafety.key /etc/ssl/private/esafety.key
            '\(web)' web --log '\(s.log)' --accounts '\(s.accounts)' --listen 127.0.0.1:8080 \
              --access-log '\(d)/proxy-access.log' 2>'\(d)/proxied-web.err' &
            WEB=$!
            '\(nginx)' -c '\(d)/nginx.conf'
            # -f: a 502 (nginx up, the console not yet) is not ready.
            for i in $(seq 300); do \(curlArgs) -f -o /dev/null '\(base)/login' && break; sleep 0.1; done
            J='\(d)/jar'
            \(curlArgs) -c "$J" -b "$J" '\(base)/login' > '\(d)/1-login.txt'
            CSRF=$(grep -o 'name="csrf" value="[^"]*"' '\(d)/1-login.txt' | head -1 | sed 's/.*value="//;s/"$//')
            \(curlArgs) -c "$J" -b "$J" --data-urlencode "csrf=$CSRF" --data-urlencode username=dsl1 \
              --data-urlencode 'password=\(ConsoleTests.password)' '\(base)/login' > '\(d)/2-post.txt'
            \(curlArgs) -c "$J" -b "$J" '\(base)/incidents/\(id)' > '\(d)/3-incident.txt'
            CSRF=$(grep -o 'name="csrf" value="[^"]*"' '\(d)/3-incident.txt' | head -1 | sed 's/.*value="//;s/"$//')
            \(curlArgs) -c "$J" -b "$J" --data-urlencode "csrf=$CSRF" '\(base)/incidents/\(id)/ack' > '\(d)/4-ack.txt'
            \(curlArgs) -N --max-time 8 -c "$J" -b "$J" '\(base)/events' > '\(d)/5-events.txt' 2>&1 || true
            '\(nginx)' -c '\(d)/nginx.conf' -s stop
            kill $WEB
            """
        s.dir.write("inside.sh", script)
        let inside = try Child(
            "/usr/bin/unshare",
            ["--net", "--mount", "--propagation", "private", "/bin/sh", d + "/inside.sh"],
            capture: true
        )
        // While the live stream is open through nginx, a new incident arrives.
        _ = poll(timeout: 30) {
            ((try? String(contentsOfFile: d + "/4-ack.txt", encoding: .utf8)) ?? "").contains("HTTP")
        }
        usleep(1_500_000)
        try s.send([ConsoleTests.squid("dave", host: "abuse.example/3", t: 4)], incidents: 2)
        let (status, output) = inside.wait()
        #expect(
            status == 0,
            "\(output) \((try? String(contentsOfFile: d + "/nginx-error.log", encoding: .utf8)) ?? "")"
        )
        func read(_ name: String) -> String { (try? String(contentsOfFile: d + "/" + name, encoding: .utf8)) ?? "" }
        let login = read("1-login.txt")
        #expect(login.hasPrefix("HTTP/1.1 200"), "\(login.prefix(300)) \(read("proxied-web.err"))")
        #expect(login.contains("Secure"), "the log-in form's cookie is Secure behind HTTPS")
        #expect(login.contains("Strict-Transport-Security: max-age="))
        let posted = read("2-post.txt")
        #expect(posted.hasPrefix("HTTP/1.1 303"), "\(posted.prefix(300))")
        #expect(posted.contains("esafety_session=") && posted.contains("; Secure"), "\(posted.prefix(500))")
        #expect(read("3-incident.txt").contains("alice"))
        #expect(read("4-ack.txt").hasPrefix("HTTP/1.1 303"), "\(read("4-ack.txt").prefix(300))")
        #expect(
            WorkflowCommandTests.incidents(s.log).contains {
                $0["event"] as? String == "ack" && $0["id"] as? String == id && $0["by"] as? String == "dsl1"
            }
        )
        let dave = try #require(s.ids().last)
        let events = read("5-events.txt")
        #expect(events.contains("\"id\":\"\(dave)\""), "the live stream passes through nginx: \(events.prefix(600))")
        // The console saw the proxy's address, and recorded the views.
        let access = WorkflowCommandTests.incidents(d + "/proxy-access.log")
        #expect(access.contains { $0["what"] as? String == "incident" && $0["id"] as? String == id })
    }
}
