namespace Rx.Uhura;

/// <summary>
/// A server send named a client id that is not connected: never known, or already gone. (socket-ipc: <c>BadClientError</c>.)
/// </summary>
public sealed class BadClientException : SendException
{
    /// <summary>Creates the error.</summary>
    public BadClientException(string eventName, string clientId) : base(eventName, $"Cannot send '{eventName}': no connected client has the id '{clientId}'.")
    {
        ClientId = clientId;
    }

    /// <summary>The client id that was asked for.</summary>
    public string ClientId { get; }
}
