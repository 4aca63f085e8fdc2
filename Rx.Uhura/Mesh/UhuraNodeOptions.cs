using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Mesh;

/// <summary>Settings of a <see cref="UhuraNode"/>. Start from <see cref="Default"/> and use <c>with</c>.</summary>
public sealed record UhuraNodeOptions
{
    /// <summary>The defaults.</summary>
    public static UhuraNodeOptions Default { get; } = new();

    /// <summary>The node's id, unique among the nodes it meets; null (the default) = a random UUID.</summary>
    public string? NodeId { get; init; }

    /// <summary>The wire. Default <see cref="MeshProtocol.Native"/>.</summary>
    public MeshProtocol Protocol { get; init; } = MeshProtocol.Native;

    /// <summary>Native wire: the channel; a peer on another channel is refused at the handshake. Default <c>DEFAULT_CHANNEL</c> (verbose's).</summary>
    public string Channel { get; init; } = "DEFAULT_CHANNEL";

    /// <summary>A heartbeat goes to a peer after nothing was written to it for this long. Default 1 s (masterless's).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A link on which nothing arrived for this long is dead: it is dropped (and reconnected if kept). Default 5 s: a
    /// Node masterless peer's heartbeats may be 2 s apart. <see cref="Timeout.InfiniteTimeSpan"/> turns the check off.
    /// </summary>
    public TimeSpan PeerTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a connection may take from the socket opening to the end of the handshake. Default 5 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How kept peers are reconnected: the library's backoff policy (masterless tries once). Default <see cref="ReconnectOptions.Default"/>.</summary>
    public ReconnectOptions Reconnect { get; init; } = ReconnectOptions.Default;

    /// <summary>The most peers a node has at once; further connections are refused with <see cref="PeerRefusal.Full"/>. Default 1000 (verbose's).</summary>
    public int MaxPeers { get; init; } = 1000;

    /// <summary>Packets that may wait for a peer's link (during its handshake or a reconnection); past this <c>Send</c> to it returns false. Default 10,000.</summary>
    public int MaxQueuedPackets { get; init; } = UhuraDefaults.MaxQueuedMessages;

    /// <summary>Bytes that may wait to be written to one socket; past this the link is dropped as a slow consumer. Default 64 MiB.</summary>
    public long MaxOutboundBufferBytes { get; init; } = UhuraDefaults.MaxOutboundBufferBytes;

    /// <summary>Largest packet or frame accepted from a peer, in bytes; a larger one drops that link with a <see cref="FrameTooLargeException"/>. Default 16 MiB.</summary>
    public long MaxPacketSize { get; init; } = UhuraDefaults.MaxMessageSize;

    /// <summary>Deepest JSON nesting accepted from a peer. Default 64.</summary>
    public int MaxJsonDepth { get; init; } = UhuraDefaults.MaxJsonDepth;

    /// <summary>
    /// Notifications (packets, bus events, node events) that may wait for the node's subscribers, which are called one at
    /// a time off the links' read loops. When that many wait, the stable links stop reading their sockets until there is
    /// room (back-pressure on the peers; their bus events stay unacknowledged meanwhile, and a peer's
    /// <see cref="InactivityTimeout"/> still counts); the <see cref="PeerTimeout"/> of a link is suspended while it waits.
    /// Default 1,024.
    /// </summary>
    public int MaxQueuedDeliveries { get; init; } = 1_024;

    /// <summary>Event bus: unacknowledged events kept per peer for retransmission; beyond it the oldest is dropped with a <see cref="NodeEventKind.BufferOverflow"/>. Default 1000.</summary>
    public int BufferMax { get; init; } = 1000;

    /// <summary>Event bus: how long an unacknowledged event is kept for retransmission; then <see cref="NodeEventKind.BufferExpired"/>. Default 15 min.</summary>
    public TimeSpan BufferTimeout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Event bus: how often a node acknowledges the events it received from each peer (cumulatively). Default 1 s.</summary>
    public TimeSpan AcknowledgeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Event bus: a link with unacknowledged events on which no acknowledgement arrived for this long is dropped and
    /// reconnected (verbose's <c>timeout</c>). Default 60 s.
    /// </summary>
    public TimeSpan InactivityTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How packets and event arguments are serialized. Default: Newtonsoft defaults without date parsing.</summary>
    public JsonSerializerSettings? SerializerSettings { get; init; }

    /// <summary>The transport. Default <see cref="SocketTransport.Instance"/> (TCP and Unix sockets).</summary>
    public ITransport Transport { get; init; } = SocketTransport.Instance;

    /// <summary>
    /// TLS settings for <c>tls://</c> endpoints (a <see cref="TlsEndPoint"/>), which are opened with a
    /// <see cref="TlsTransport"/> over <see cref="Transport"/>. Null (the default) = a <c>tls://</c> endpoint is refused.
    /// </summary>
    public TlsOptions? Tls { get; init; }

    /// <summary>The clock of every timer of the node. Default <see cref="TimeProvider.System"/>; tests pass a virtual one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where the node logs. Default: nowhere.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    internal JsonSerializer CreateSerializer() => Rx.Uhura.Protocol.UhuraJson.CreateSerializer(SerializerSettings);

    internal void Validate()
    {
        if (NodeId is not null && NodeId.Length == 0)
        {
            throw new ArgumentException("A node id cannot be empty.", nameof(NodeId));
        }

        ArgumentException.ThrowIfNullOrEmpty(Channel);
        // Timer periods: at most what a timer waits. (The other spans are compared with elapsed time: any length works.)
        Rx.Uhura.Internal.TimeoutChecks.Check(HeartbeatInterval, nameof(HeartbeatInterval));
        Rx.Uhura.Internal.TimeoutChecks.Check(HandshakeTimeout, nameof(HandshakeTimeout));
        Rx.Uhura.Internal.TimeoutChecks.Check(AcknowledgeInterval, nameof(AcknowledgeInterval));
        Positive(BufferTimeout, nameof(BufferTimeout));
        if (PeerTimeout != Timeout.InfiniteTimeSpan)
        {
            Positive(PeerTimeout, nameof(PeerTimeout));
        }

        if (InactivityTimeout != Timeout.InfiniteTimeSpan)
        {
            Positive(InactivityTimeout, nameof(InactivityTimeout));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPeers, 1, nameof(MaxPeers));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueuedPackets, 1, nameof(MaxQueuedPackets));
        ArgumentOutOfRangeException.ThrowIfLessThan(BufferMax, 1, nameof(BufferMax));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxQueuedDeliveries, 1, nameof(MaxQueuedDeliveries));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPacketSize, 64, nameof(MaxPacketSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxOutboundBufferBytes, 1024, nameof(MaxOutboundBufferBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxJsonDepth, 2, nameof(MaxJsonDepth));
        ArgumentNullException.ThrowIfNull(Reconnect);
        Reconnect.Validate();
        ArgumentNullException.ThrowIfNull(Transport);
        Tls?.Validate();
        ArgumentNullException.ThrowIfNull(TimeProvider);
        ArgumentNullException.ThrowIfNull(LoggerFactory);
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, "Must be positive.");
        }
    }
}
