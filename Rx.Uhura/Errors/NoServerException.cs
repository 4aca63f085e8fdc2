namespace Rx.Uhura;

/// <summary>
/// A send was refused because the client has no live connection and does not queue while disconnected
/// (<see cref="UhuraClientOptions.QueueWhileDisconnected"/>; the socket-ipc default). (socket-ipc: <c>NoServerError</c>.)
/// </summary>
public sealed class NoServerException : SendException
{
    /// <summary>Creates the error.</summary>
    public NoServerException(string eventName) : base(eventName, $"Cannot send '{eventName}': no active server connection.") { }
}
