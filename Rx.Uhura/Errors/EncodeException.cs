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
}
