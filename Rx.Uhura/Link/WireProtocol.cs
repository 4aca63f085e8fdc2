namespace Rx.Uhura;

/// <summary>
/// The wire a link speaks. A server accepts <see cref="Native"/> and <see cref="NodeUhura"/> on one endpoint and tells
/// them apart by the first byte; <see cref="SocketIpc"/> has no handshake, so a server speaks it alone
/// (<see cref="UhuraServerOptions.Protocol"/>).
/// </summary>
public enum WireProtocol
{
    /// <summary>Rx.Uhura's own protocol: length-prefixed binary frames, cumulative acks, resume in both directions, heartbeats (docs/PROTOCOL.md).</summary>
    Native,

    /// <summary>The wire of the Node package <c>uhura</c>: an endless JSON array, per-message acks; to talk to Node peers.</summary>
    NodeUhura,

    /// <summary>
    /// The wire of the Node package <c>@crussell52/socket-ipc</c>: <c>{"topic":..,"message":..}</c> JSON frames ended by
    /// two NUL bytes, over Unix sockets. No handshake, no acks, no session: a topic is an event name and the message its
    /// one argument; a send completes once written.
    /// </summary>
    SocketIpc,
}
