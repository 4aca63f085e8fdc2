using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json;

namespace Rx.Uhura;

/// <summary>Settings of one link, shared by servers and clients. Start from <see cref="Default"/> and use <c>with</c>.</summary>
public sealed record ConnectionOptions
{
    /// <summary>The defaults (see <see cref="UhuraDefaults"/>).</summary>
    public static ConnectionOptions Default { get; } = new();

    /// <summary>Largest message accepted from the peer, in bytes; a larger one closes the connection with a <see cref="FrameTooLargeException"/>. Default 16 MiB.</summary>
    public long MaxMessageSize { get; init; } = UhuraDefaults.MaxMessageSize;

    /// <summary>Deepest JSON nesting accepted in a message. Default 64.</summary>
    public int MaxJsonDepth { get; init; } = UhuraDefaults.MaxJsonDepth;

    /// <summary>Sends that may wait for the link to be ready; past this a send fails with <see cref="OutboundBufferFullException"/>. Default 10,000.</summary>
    public int MaxQueuedMessages { get; init; } = UhuraDefaults.MaxQueuedMessages;

    /// <summary>Bytes that may wait to be written to the socket; past this <see cref="SlowConsumerPolicy"/> applies. Default 64 MiB.</summary>
    public long MaxOutboundBufferBytes { get; init; } = UhuraDefaults.MaxOutboundBufferBytes;

    /// <summary>
    /// Bytes of encoded events one side holds for its peer and has not had acknowledged: waiting for the link (a client's
    /// queue while disconnected, sends before the handshake), waiting to be written, or written and waiting for the
    /// peer's acknowledgement. A send past it is refused as a full queue: on a live link <see cref="SlowConsumerPolicy"/>
    /// applies, on a client's queue <see cref="UhuraClientOptions.QueueFullPolicy"/> (an <see cref="OutboundBufferFullException"/>,
    /// reported on <see cref="UhuraClient.Dropped"/> for posted events). One event larger than the bound is still
    /// accepted when nothing else is held. Default 64 MiB.
    /// </summary>
    public long MaxQueuedBytes { get; init; } = UhuraDefaults.MaxQueuedBytes;

    /// <summary>
    /// Sends written to a live link and waiting for the peer's acknowledgement; past this <see cref="SlowConsumerPolicy"/>
    /// applies, as for bytes. Bounds what a peer that reads but never acknowledges can make a sender hold. Default 1,000,000
    /// (generous: a fast sender may have hundreds of thousands in flight before the acks of a burst come back).
    /// </summary>
    public int MaxPendingAcks { get; init; } = 1_000_000;

    /// <summary>
    /// Received events that may wait for the link's subscribers (on a client: for the client's, across its links).
    /// When that many wait, the link stops reading the socket until there is room (back-pressure on the peer, whose
    /// sends stay unacknowledged meanwhile); the heartbeat timeout is suspended while it waits, and reading resumes once
    /// half of them were delivered. Default 1,024. A larger bound lets a fast peer's burst through with fewer pauses (in
    /// the comparison run's acked throughput, 4,096 measured about 15% faster than 1,024 on 2 cores) at the price of more
    /// events held in memory behind a slow subscriber.
    /// </summary>
    public int MaxQueuedDeliveries { get; init; } = 1_024;

    /// <summary>What happens when <see cref="MaxOutboundBufferBytes"/> or <see cref="MaxPendingAcks"/> is reached: the send fails (default) or the slow peer is disconnected.</summary>
    public SlowConsumerPolicy SlowConsumerPolicy { get; init; } = SlowConsumerPolicy.FailSend;

    /// <summary>Server: the most keys a client's session may hold; a change beyond it closes the connection with a <see cref="ProtocolException"/>. Default 1,000.</summary>
    public int MaxSessionKeys { get; init; } = 1_000;

    /// <summary>Server: the most bytes a client's session may hold (keys and values as JSON text); a change beyond it closes the connection with a <see cref="ProtocolException"/>. Default 1 MiB.</summary>
    public long MaxSessionBytes { get; init; } = 1024 * 1024;

    /// <summary>Whether to ask for (client) or grant (server) acknowledgements. Default true.</summary>
    public bool EnableAcks { get; init; } = true;

    /// <summary>
    /// Native protocol: the heartbeat interval a client proposes (the server clamps it to 100 ms .. 1 h). A side sends
    /// Ping after writing nothing for this long and drops a link that sent nothing for twice as long. Positive, at most
    /// about 49.7 days (before: a negative one was silently sent as 0). Default 15 s.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Server, native wire: when another client presents the session of a live link (and is refused with
    /// <see cref="SessionInUseException"/>), the server pings that link's peer, and drops the link as dead when nothing
    /// arrives from the peer within this time, so the newcomer's next attempt gets the session. A process restarted from
    /// a saved session after its machine vanished then waits this long, not the heartbeat timeout. While the link's
    /// reading waits for its subscribers, the peer's answer may sit unread, and the link is kept; a peer whose own
    /// subscribers hold its reading (and its writing of anything) this long cannot answer, and loses the session to the
    /// newcomer. <see cref="Timeout.InfiniteTimeSpan"/> turns the probe off. Default 5 s.
    /// </summary>
    public TimeSpan SessionProbeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How socket-ipc messages are framed; null (the default) = the package's own JSON frames, on the library's fast
    /// path. Both sides must use the same.
    /// </summary>
    public Protocol.ISocketIpcTranscoder? SocketIpcTranscoder { get; init; }

    /// <summary>
    /// Server: how long a client may take from connecting to completing the handshake (native <c>Hello</c>, Node wire
    /// <c>start</c>); a slower one is closed with a <see cref="ProtocolException"/>. <see cref="Timeout.InfiniteTimeSpan"/>
    /// turns it off. Default 10 s.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a graceful close waits for queued sends and acknowledgements before aborting: zero or more, at most about 49.7 days, or <see cref="Timeout.InfiniteTimeSpan"/>. Default 5 s.</summary>
    public TimeSpan CloseTimeout { get; init; } = UhuraDefaults.CloseTimeout;

    /// <summary>How event arguments are serialized (objects passed to <c>Send</c>) and read back (<see cref="UhuraEvent.Arg{T}"/>). Default: Newtonsoft defaults without date parsing.</summary>
    public JsonSerializerSettings? SerializerSettings { get; init; }

    /// <summary>The clock for every timeout and delay of the link. Default: <see cref="TimeProvider.System"/>; tests pass a virtual one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where the library logs. Default: nowhere.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>
    /// The serializer for these options, made once and shared by every connection using them (serializing and
    /// deserializing with a configured <see cref="JsonSerializer"/> is safe from several threads). The caller's
    /// <see cref="SerializerSettings"/> are copied, never changed.
    /// </summary>
    internal JsonSerializer CreateSerializer() => Serializers.GetValue(this, static options => Protocol.UhuraJson.CreateSerializer(options.SerializerSettings));

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ConnectionOptions, JsonSerializer> Serializers = new();

    internal void Validate()
    {
        if (MaxMessageSize < 64)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageSize), MaxMessageSize, "Must be at least 64 bytes.");
        }

        if (MaxJsonDepth < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxJsonDepth), MaxJsonDepth, "Must be at least 2.");
        }

        if (MaxQueuedMessages < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedMessages), MaxQueuedMessages, "Must be positive.");
        }

        if (MaxOutboundBufferBytes < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxOutboundBufferBytes), MaxOutboundBufferBytes, "Must be at least 1 KiB.");
        }

        if (MaxQueuedBytes < 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedBytes), MaxQueuedBytes, "Must be at least 1 KiB.");
        }

        Internal.TimeoutChecks.Check(HandshakeTimeout, nameof(HandshakeTimeout), allowInfinite: true);
        Internal.TimeoutChecks.Check(HeartbeatInterval, nameof(HeartbeatInterval));
        Internal.TimeoutChecks.Check(SessionProbeTimeout, nameof(SessionProbeTimeout), allowInfinite: true);

        if (MaxQueuedDeliveries < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueuedDeliveries), MaxQueuedDeliveries, "Must be positive.");
        }

        if (MaxPendingAcks < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPendingAcks), MaxPendingAcks, "Must be positive.");
        }

        if (MaxSessionKeys < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxSessionKeys), MaxSessionKeys, "Must be positive.");
        }

        if (MaxSessionBytes < 64)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxSessionBytes), MaxSessionBytes, "Must be at least 64 bytes.");
        }

        Internal.TimeoutChecks.Check(CloseTimeout, nameof(CloseTimeout), allowZero: true, allowInfinite: true);

        ArgumentNullException.ThrowIfNull(LoggerFactory);
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}
