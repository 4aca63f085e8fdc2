namespace Rx.Uhura.Hosting;

/// <summary>
/// How a hosted <see cref="UhuraClient"/> is run: where it connects, and whether the host's start waits for the
/// connection. Bound from the same configuration section as its <see cref="UhuraClientOptions"/> (keys <c>Endpoint</c>,
/// <c>WaitForConnection</c>), or set by <c>AddUhuraClient(endpoint)</c>.
/// </summary>
public sealed class UhuraClientHostOptions
{
    /// <summary>The endpoint URI of the server (<c>tcp://HOST:PORT</c>, <c>tls://HOST:PORT</c>, <c>unix:///PATH</c>). Required.</summary>
    public string? Endpoint { get; set; }

    /// <summary>
    /// Whether the host's start waits until the client is connected (handshake done). A client that closes first (no
    /// <see cref="UhuraClientOptions.Reconnect"/> and the server is down, or the server refuses it) then fails the
    /// host's start; the start's cancellation token bounds the wait. When false, the client connects in the
    /// background and sends made meanwhile are queued. Default true.
    /// </summary>
    public bool WaitForConnection { get; set; } = true;
}
