/// The version reported in logs, the User-Agent, `--version` and the status file.
public enum ChatQueueVersion {
    public static let current = "0.1.0"
}
