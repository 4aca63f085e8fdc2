namespace Rx.Uhura;

/// <summary>An argument could not be serialized to JSON. Nothing was sent. (socket-ipc: <c>EncodeError</c>.)</summary>
public sealed class EncodeException : SendException
{
    /// <summary>Creates the error.</summary>
    public EncodeException(string eventName, Exception innerException)
        : base(eventName, $"The arguments of '{eventName}' cannot be encoded: {innerException.Message}", innerException) { }

    /// <summary>Creates the error for arguments the wire cannot carry (<paramref name="detail"/> says why).</summary>
    public EncodeException(string eventName, string detail)
        : base(eventName, $"The arguments of '{eventName}' cannot be encoded: {detail}") { }

    /// <summary>A session value that cannot be encoded; <see cref="SendException.EventName"/> is <c>_set</c>, the wire's name for session changes.</summary>
    internal static EncodeException ForSessionKey(string key, string detail, Exception? innerException = null)
        => new(SessionEventName, $"The value of session key '{key}' cannot be encoded: {detail}", innerException, withMessage: true);

    /// <summary>The event name session changes go by (the Node uhura wire's <c>_set</c>).</summary>
    internal const string SessionEventName = "_set";

    private EncodeException(string eventName, string message, Exception? innerException, bool withMessage)
        : base(eventName, message, innerException) { }
}
