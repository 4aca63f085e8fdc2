namespace Rx.Uhura.Transport;

/// <summary>
/// What only a transport knows about a connection it opened, offered by the <see cref="Stream"/> it returns: how to
/// describe the peer, the peer's Unix credentials, and how to end the sending direction alone (half-close). The library
/// asks for these through this interface, so a transport of your own (or a stream wrapping one, such as a fault
/// injector in tests) takes part by implementing it. A plain <see cref="System.Net.Sockets.NetworkStream"/> handed to
/// <c>UhuraClient.Connect(Stream)</c> or <c>UhuraServer.Accept(Stream)</c> is read through its socket; any other stream
/// has none of these facts (no description, no credentials, no half-close).
/// </summary>
public interface ITransportStream
{
    /// <summary>The peer as logs and statistics show it (<c>127.0.0.1:50312</c>, <c>unix pid 4242</c>), or null when unknown.</summary>
    string? RemoteAddress { get; }

    /// <summary>The peer's process, user and group as the kernel saw them (Unix domain sockets on Linux), or null.</summary>
    UnixPeerCredentials? PeerCredentials { get; }

    /// <summary>
    /// Ends this side's sending direction: the peer reads the end of the stream once it has read everything written,
    /// while this side can still read (a socket's <c>shutdown(SHUT_WR)</c>, TLS's <c>close_notify</c>). Completes without
    /// throwing when the connection is already gone.
    /// </summary>
    ValueTask ShutdownSendAsync();
}
