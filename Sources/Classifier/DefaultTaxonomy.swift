/// esafety's default categories (from the school's e-safety policy and the UK Safer
/// Internet Centre's categories). `category.toml` files override these; they are used
/// for a foreign tree's mapped folders when no bundled metadata is loaded with it.
public enum DefaultTaxonomy {
    public static let categories: [Category] = [
        Category(name: "iwf", displayName: "IWF child sexual abuse URL list", severity: .critical, locked: true),
        Category(name: "ctiru", displayName: "CTIRU terrorist content list", severity: .critical, locked: true),
        Category(name: "self-harm", displayName: "Self-harm", severity: .high),
        Category(name: "suicide", displayName: "Suicide", severity: .high),
        Category(name: "extremism", displayName: "Extremism and radicalisation", severity: .high),
        Category(name: "pornography", displayName: "Pornography", severity: .high),
        Category(name: "violence", displayName: "Violence", severity: .high),
        Category(name: "weapons", displayName: "Weapons", severity: .high),
        Category(name: "grooming", displayName: "Grooming and exploitation risk", severity: .high),
        Category(name: "drugs", displayName: "Drugs and substance abuse", severity: .medium),
        Category(name: "gambling", displayName: "Gambling", severity: .medium),
        Category(name: "hate", displayName: "Discrimination and hate", severity: .medium),
        Category(name: "bypass", displayName: "Filter bypass (VPN, proxy, DNS over HTTPS)", severity: .medium),
        Category(name: "dating", displayName: "Dating", severity: .medium),
        Category(name: "malware", displayName: "Malware", severity: .low),
        Category(name: "hacking", displayName: "Hacking", severity: .low),
        Category(name: "piracy", displayName: "Piracy and copyright theft", severity: .low),
        Category(name: "phishing", displayName: "Phishing", severity: .low),
        Category(name: "games", displayName: "Games", severity: .info),
        Category(name: "social-media", displayName: "Social media", severity: .info),
        Category(name: "streaming", displayName: "Streaming media", severity: .info),
        Category(name: "shopping", displayName: "Shopping", severity: .info),
    ]

    public static func category(named name: String) -> Category? {
        categories.first { $0.name == name }
    }
}
