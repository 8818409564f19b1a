import Common
import CYAML

/// Builds a `YAMLNode` tree from libyaml's event parser, with the limits that make a hostile file
/// cheap to reject: nesting depth is checked per event (a 10 000-deep file stops at level 65, before
/// anything deep is built) and alias expansion is budgeted ("billion laughs" stops after
/// `aliasBudget` expanded nodes; the expanded tree shares storage, so memory stays small too).
struct YAMLReader {
    struct Limits: Sendable {
        var maxDepth = 64
        var aliasBudget = 100_000
    }

    struct Output {
        /// The single document's root; nil after a fatal problem or for an empty stream.
        var root: YAMLNode?
        var diagnostics: [ConfigDiagnostic]
    }

    let file: String
    var limits = Limits()

    /// An open mapping or sequence. Mappings hold keys and values alternately until they end.
    private struct Frame {
        var isMapping: Bool
        var mark: YAMLMark
        var anchor: String?
        var items: [YAMLNode] = []
        /// Nodes in this subtree, aliases counted expanded: the cost of aliasing it later.
        var size = 1
    }

    private struct Fatal: Error {
        var diagnostic: ConfigDiagnostic
    }

    func read(_ bytes: [UInt8]) -> Output {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return Output(
                root: nil,
                diagnostics: [
                    diagnostic(
                        "yaml.internal", YAMLMark(line: 0, column: 0),
                        "the YAML parser could not be initialised")
                ])
        }
        defer { yaml_parser_delete(&parser) }
        var state = State()
        // libyaml keeps a pointer to the input (yaml_parser_set_input_string does not copy it), so
        // every parse call happens inside this closure, while the buffer is pinned.
        let fatal: Fatal? = bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return nil }
            yaml_parser_set_input_string(&parser, base, buffer.count)
            do {
                try run(&parser, &state, bytes)
                return nil
            } catch let f as Fatal {
                return f
            } catch {
                return nil
            }
        }
        if let fatal { return Output(root: nil, diagnostics: state.diagnostics + [fatal.diagnostic]) }
        guard state.documents > 0, let root = state.root, !root.isNull else {
            return Output(
                root: nil,
                diagnostics: state.diagnostics + [
                    diagnostic(
                        "file.empty", YAMLMark(line: 0, column: 0), "configuration file is empty")
                ])
        }
        return Output(root: root, diagnostics: state.diagnostics)
    }

    private struct State {
        var stack: [Frame] = []
        var anchors: [String: (node: YAMLNode, size: Int)] = [:]
        var expanded = 0
        var documents = 0
        var root: YAMLNode?
        var diagnostics: [ConfigDiagnostic] = []
    }

    private func run(_ parser: inout yaml_parser_t, _ state: inout State, _ bytes: [UInt8]) throws {
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else { throw Fatal(diagnostic: syntaxError(parser, bytes)) }
            defer { yaml_event_delete(&event) }
            let mark = YAMLMark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return
            case YAML_DOCUMENT_START_EVENT:
                state.documents += 1
                if state.documents > 1 {
                    throw Fatal(
                        diagnostic: diagnostic(
                            "yaml.multiple_documents", mark,
                            "the file contains more than one YAML document; a configuration is exactly one"))
                }
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let scalar = YAMLScalar(
                    value: Self.string(s.value, Int(s.length)) ?? "",
                    style: Self.style(s.style), tag: Self.string(s.tag))
                complete(
                    YAMLNode(content: .scalar(scalar), mark: mark), size: 1,
                    anchor: Self.string(s.anchor), &state)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                guard state.stack.count < limits.maxDepth else {
                    throw Fatal(
                        diagnostic: diagnostic(
                            "yaml.too_deep", mark,
                            "nesting is deeper than the limit of \(limits.maxDepth) levels"))
                }
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let anchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                state.stack.append(Frame(isMapping: isMapping, mark: mark, anchor: Self.string(anchor)))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                let frame = state.stack.removeLast()
                let content: YAMLNode.Content =
                    frame.isMapping
                    ? .mapping(pairs(frame.items, &state.diagnostics)) : .sequence(frame.items)
                complete(YAMLNode(content: content, mark: frame.mark), size: frame.size, anchor: frame.anchor, &state)
            case YAML_ALIAS_EVENT:
                let name = Self.string(event.data.alias.anchor) ?? ""
                // An anchor still open (`&a [*a]`) is not registered yet, so recursion is "undefined".
                guard let target = state.anchors[name] else {
                    throw Fatal(
                        diagnostic: diagnostic(
                            "yaml.undefined_alias", mark,
                            "alias *\(name) does not refer to an anchor defined before it"))
                }
                state.expanded += target.size
                guard state.expanded <= limits.aliasBudget else {
                    throw Fatal(
                        diagnostic: diagnostic(
                            "yaml.alias_limit", mark,
                            "alias expansion exceeds the limit of \(limits.aliasBudget) nodes"))
                }
                complete(target.node, size: target.size, anchor: nil, &state)
            default:
                break  // STREAM_START, DOCUMENT_END, NO_EVENT: nothing to build.
            }
        }
    }

    private func complete(_ node: YAMLNode, size: Int, anchor: String?, _ state: inout State) {
        if let anchor { state.anchors[anchor] = (node, size) }
        if state.stack.isEmpty {
            state.root = node
        } else {
            state.stack[state.stack.count - 1].items.append(node)
            state.stack[state.stack.count - 1].size += size
        }
    }

    /// Pairs up a mapping's items; a repeated scalar key is an error at its second occurrence and is
    /// dropped (the first one stays), so that validation can go on and report everything else.
    private func pairs(_ items: [YAMLNode], _ diagnostics: inout [ConfigDiagnostic]) -> [YAMLNode.Pair] {
        var result: [YAMLNode.Pair] = []
        var seen: [String: YAMLMark] = [:]
        var index = 0
        while index + 1 < items.count {
            let key = items[index], value = items[index + 1]
            index += 2
            if let text = key.scalar?.value {
                if let first = seen[text] {
                    diagnostics.append(
                        diagnostic(
                            "yaml.duplicate_key", key.mark,
                            "duplicate key \(ConfigDecoder.quoted(text)) (first defined at line \(first.line))"))
                    continue
                }
                seen[text] = key.mark
            }
            result.append(YAMLNode.Pair(key: key, value: value))
        }
        return result
    }
}
