namespace Rx.Uhura;

/// <summary>
/// The link ended before an event was acknowledged (or, without acks, written). The event may or may not have
/// reached the peer. A client with reconnection enabled resends such events instead of failing them.
/// </summary>
public sealed class ConnectionLostException : SendException
{
    /// <summary>Creates the error.</summary>
    public ConnectionLostException(string eventName, Exception? innerException = null)
        : base(eventName, $"The connection ended before '{eventName}' was acknowledged.", innerException) { }
}
