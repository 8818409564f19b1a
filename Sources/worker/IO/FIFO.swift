/// A first-in, first-out queue over one array: `popFirst` moves a head index instead of
/// shifting the elements, and the array is emptied (its capacity kept) once the head reaches the
/// end, so a queue that drains between bursts allocates once and stays O(1) per element. Used for
/// a connection's queued request parts and for the Redis commands awaiting their replies.
struct FIFO<Element> {
    private var elements: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == elements.count }

    mutating func append(_ element: Element) {
        elements.append(element)
    }

    /// The oldest element, removed; nil when the queue is empty.
    mutating func popFirst() -> Element? {
        guard head < elements.count else { return nil }
        let element = elements[head]
        head += 1
        if head == elements.count {
            elements.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }

    /// Drops every element and the storage.
    mutating func removeAll() {
        elements = []
        head = 0
    }
}
