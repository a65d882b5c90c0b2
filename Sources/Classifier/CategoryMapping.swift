/// Maps category folder names of foreign list trees (UT1, Shalla) onto esafety's taxonomy.
///
/// A folder whose name is already one of ours, or that carries its own `category.toml`,
/// is used as it is. A folder that maps here takes the name (and, when the bundled
/// lists are loaded too, the metadata) of our category. Anything else keeps its
/// folder name with severity `info`: counted, never an incident by default.
public enum CategoryMapping {
    /// Foreign folder name -> esafety category. Documented in `docs/LISTS.md`.
    static let foreign: [String: String] = [
        // UT1 (Université Toulouse 1), including its compatibility symlinks.
        "adult": "pornography",
        "porn": "pornography",
        "agressif": "hate",
        "aggressive": "hate",
        "violence": "violence",
        "dangerous_material": "weapons",
        "drogue": "drugs",
        "drugs": "drugs",
        "gambling": "gambling",
        "arjel": "gambling",
        "dating": "dating",
        "vpn": "bypass",
        "redirector": "bypass",
        "strict_redirector": "bypass",
        "strong_redirector": "bypass",
        "proxy": "bypass",
        "doh": "bypass",
        "residential-proxies": "bypass",
        "malware": "malware",
        "cryptojacking": "malware",
        "stalkerware": "malware",
        "phishing": "phishing",
        "hacking": "hacking",
        "ddos": "hacking",
        "warez": "piracy",
        "games": "games",
        "social_networks": "social-media",
        "audio-video": "streaming",
        "radio": "streaming",
        "shopping": "shopping",
        // Shalla Secure Services' list names.
        "gamble": "gambling",
        "weapons": "weapons",
        "spyware": "malware",
        "anonvpn": "bypass",
        "socialnet": "social-media",
        "movies": "streaming",
        "music": "streaming",
    ]

    /// Metadata for a foreign folder that maps to nothing: counted as `info`.
    static func unmapped(_ folder: String) -> Category {
        Category(
            name: folder,
            displayName: folder,
            description: "Foreign category without an esafety mapping",
            severity: .info
        )
    }

    /// The esafety name a folder is loaded under.
    public static func name(forFolder folder: String) -> String {
        foreign[folder] ?? folder
    }
}
