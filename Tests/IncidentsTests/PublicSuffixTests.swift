import Foundation
import Logging
import Pipeline
import Synchronization
import SystemSupport
import TestSupport
import Testing

@testable import Classifier
@testable import Incidents
@testable import LogFormats

@Suite("The Public Suffix List")
struct PublicSuffixTests {
    @Test(
        "registrable domains from the Public Suffix List",
        arguments: [
            ("www.example.co.uk", "example.co.uk"), ("a.b.example.com", "example.com"), ("example.com", "example.com"),
            ("co.uk", "co.uk"), ("10.0.0.1", "10.0.0.1"), ("x.city.kawasaki.jp", "city.kawasaki.jp"),
            ("x.y.kobe.jp", "x.y.kobe.jp"),
        ]
    )
    func suffixes(host: String, expected: String) {
        let psl = PublicSuffix(text: "com\nuk\nco.uk\njp\n*.kawasaki.jp\n!city.kawasaki.jp\n*.kobe.jp\n")
        #expect(psl.registrableDomain(host) == expected)
    }
}
