using Rx.Uhura.Transport;

namespace Rx.Uhura;

/// <summary>What a server knows of a client when it decides whether to let it in (<see cref="UhuraServerOptions.Authenticate"/>).</summary>
public sealed class AuthenticationRequest
{
    internal AuthenticationRequest(string connectionId, WireProtocol wire, string? token, UnixPeerCredentials? peerCredentials)
    {
        ConnectionId = connectionId;
        Wire = wire;
        Token = token;
        PeerCredentials = peerCredentials;
    }

    /// <summary>The connection's id (its client id).</summary>
    public string ConnectionId { get; }

    /// <summary>The wire the client speaks.</summary>
    public WireProtocol Wire { get; }

    /// <summary>The token the client presented (<see cref="UhuraClientOptions.AuthToken"/>), or null.</summary>
    public string? Token { get; }

    /// <summary>The client process's credentials, over a Unix socket on Linux; null otherwise.</summary>
    public UnixPeerCredentials? PeerCredentials { get; }
}

/// <summary>A server's decision on a client: <see cref="Accept"/> or <see cref="Refuse"/>.</summary>
public sealed record AuthenticationResult
{
    private AuthenticationResult(bool accepted, string? reason)
    {
        IsAccepted = accepted;
        Reason = reason;
    }

    /// <summary>Whether the client may go on.</summary>
    public bool IsAccepted { get; }

    /// <summary>Why the client was refused; it is sent to the client, so it should say no more than the client may know.</summary>
    public string? Reason { get; }

    /// <summary>Lets the client in.</summary>
    public static AuthenticationResult Accept() => new(true, null);

    /// <summary>Turns the client away with <paramref name="reason"/>.</summary>
    public static AuthenticationResult Refuse(string reason = "Not authorized.") => new(false, reason);
}

/// <summary>
/// The server refused the client at the handshake (<see cref="UhuraServerOptions.Authenticate"/>). No session was
/// created or resumed. A client does not retry after it: its state ends <c>Closed</c> with this error.
/// </summary>
public sealed class AuthenticationFailedException : UhuraException
{
    /// <summary>Creates the error.</summary>
    public AuthenticationFailedException(string reason, Exception? innerException = null)
        : base($"The server refused the connection: {reason}", innerException)
    {
        Reason = reason;
    }

    /// <summary>The server's reason.</summary>
    public string Reason { get; }
}
