namespace Rx.Uhura;

/// <summary>A send was attempted after the connection, client or server was closed. (socket-ipc: <c>SendAfterCloseError</c>.)</summary>
public sealed class SendAfterCloseException : SendException
{
    /// <summary>Creates the error.</summary>
    public SendAfterCloseException(string eventName) : base(eventName, $"Cannot send '{eventName}': the connection is closed.") { }
}
