import Foundation
import TestSupport

@testable import Classifier

/// Category names a target classifies to (effective matches), sorted.
func categories(_ lists: CompiledLists, _ target: String) -> [String] {
    lists.classify(target: target).categories.map(\.name).sorted()
}
