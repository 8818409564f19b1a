public enum FluxgateVersion {
    public static let string = "0.1.0"
}
