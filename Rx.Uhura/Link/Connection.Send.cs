using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection : ISessionSink
{
    private readonly Lock _gate = new();
    private readonly Queue<OutboundMessage> _preReady = new();
    private readonly Dictionary<long, OutboundMessage> _inflight = new(); // Node wire: acknowledged one by one, by id
    private int _protocolInflight; // of _inflight, the Node wire's own messages ('connect'): not the application's sends
    private readonly Queue<OutboundMessage> _unacked = new();              // native: in sequence order, acknowledged cumulatively
    private PooledBufferWriter _pending = new();
    private PooledBufferWriter _writing = new();
    private List<OutboundMessage> _pendingWaiters = new();
    private List<OutboundMessage> _writingWaiters = new();
    private TaskCompletionSource? _drained;
    private bool _endedUndelivered;
    private TaskCompletionSource<bool>? _idle; // true: idle reached; false: the link ended with events undelivered
    private long _nextSeq;
    private long _heldBytes; // payload bytes of the messages in the collections above (bounded by ConnectionOptions.MaxQueuedBytes)
    private bool _handshakeDone;
    private bool _objectMode;
    private bool _acksEnabled;
    private bool _writerActive;
    private bool _writeOwed;
    private int _readBatchThread;
    private bool _wroteFirst;
    private bool _closing;
    private bool _closed;
    private bool _outputEnded;

    /// <summary>
    /// Sends an event to the peer (uhura's <c>send(event, ...args)</c>). Arguments are serialized with Newtonsoft.Json
    /// now; <see cref="JToken"/>s are sent as they are. The task completes when the peer acknowledges the event (acks on)
    /// or when it was written to the socket (acks off), and fails with a <see cref="SendException"/> when it cannot be
    /// delivered: <see cref="EncodeException"/>, <see cref="SendAfterCloseException"/>, <see cref="OutboundBufferFullException"/>,
    /// <see cref="ConnectionLostException"/>; or, for an event the peer would refuse (its frame over
    /// <see cref="ConnectionOptions.MaxMessageSize"/>), with a <see cref="FrameTooLargeException"/> before anything is sent
    /// or queued. Sends made before the handshake completes are queued and sent in order.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    public Task Send(string eventName, params ReadOnlySpan<object?> args)
    {
        if (RefusedForBytes(eventName, args, _wire) is { } full)
        {
            return Task.FromException(full);
        }

        var message = CreateMessage(eventName, args, _serializer, _wire, _options, out var error);
        if (message is null)
        {
            return Task.FromException(error!);
        }

        if (!TryEnqueue(message) && !TryFollowSession(message))
        {
            message.Fail(new SendAfterCloseException(message.Name) { ConnectionId = Id });
        }

        return message.Completion!.Task;
    }

    /// <summary>
    /// Native protocol, server side: a send on a connection whose link dropped follows the session. It goes to the
    /// session's current connection, or waits with the session's stream for the client to resume (failing with
    /// <see cref="ConnectionLostException"/> if the session expires or starts afresh instead).
    /// </summary>
    private bool TryFollowSession(OutboundMessage message)
    {
        if (_wire != WireProtocol.Native || _serverSession is not { } session || _invalidated)
        {
            return false;
        }

        if (session.Active is { } active && !ReferenceEquals(active, this) && active.TryEnqueue(message))
        {
            return true;
        }

        // Held for the client's next link, unless one took over the stream since Active was read: then it writes it.
        var live = session.Native.HoldUnlessLive(message, _options.MaxQueuedMessages, this, out var rejected);
        if (live is not null && !live.TryEnqueue(message))
        {
            rejected = session.Native.Hold([message], _options.MaxQueuedMessages).FirstOrDefault(); // that link is closing and hands its own back too
        }

        rejected?.Fail(session.Native.IsClosedForGood
            ? new SendAfterCloseException(rejected.Name) { ConnectionId = Id } // the server closed
            : new OutboundBufferFullException(rejected.Name, "too many sends wait for the client to resume.") { ConnectionId = Id });

        if (session.Active is null)
        {
            _server!.Sessions.StreamChanged(session);
        }

        return true;
    }

    /// <summary>
    /// Sends an event without a task of its own: cheaper than <see cref="Send"/> when the caller does not need to
    /// know when each event arrived. Events reach the peer in the order they are sent, so awaiting a later
    /// <see cref="Send"/> confirms every event posted before it. Returns false when the event was not accepted: the
    /// connection is closing or closed, or its outbound buffer is full. An event accepted but lost with the link is not
    /// reported one by one (on a server, native protocol, it follows the session to the client's next link).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized, or not as JSON the peer accepts.</exception>
    /// <exception cref="FrameTooLargeException">The event's frame would exceed <see cref="ConnectionOptions.MaxMessageSize"/>.</exception>
    public bool Post(string eventName, params ReadOnlySpan<object?> args)
    {
        if (RefusedForBytes(eventName, args, _wire) is not null)
        {
            return false;
        }

        var message = CreateMessage(eventName, args, _serializer, awaited: false, null, _wire, _options, out var error) ?? throw error!;
        return Enqueue(message);
    }

    /// <summary>
    /// The error of a send that <see cref="TryEnqueue"/> would refuse whatever its size, because
    /// <see cref="ConnectionOptions.MaxQueuedBytes"/> are held already (and the policy fails the send): such a send is
    /// refused before its arguments are encoded, so a flood against a slow peer costs no memory. Null otherwise.
    /// </summary>
    internal OutboundBufferFullException? RefusedForBytes(string eventName, ReadOnlySpan<object?> args, WireProtocol? wire)
    {
        var atLeast = MinimumPayloadBytes(eventName, args);
        var held = Volatile.Read(ref _heldBytes); // a snapshot either way: the lock below only settles a send that looks refused
        if (held == 0 || held + atLeast <= _options.MaxQueuedBytes)
        {
            return null;
        }

        lock (_gate)
        {
            held = _heldBytes;
            if (_closing || held == 0 || held + atLeast <= _options.MaxQueuedBytes
                || (_handshakeDone && _options.SlowConsumerPolicy != SlowConsumerPolicy.FailSend))
            {
                return null;
            }
        }

        ValidateEventName(eventName, wire); // a misuse is reported as such, full or not
        return new OutboundBufferFullException(eventName, $"{held} bytes of events already wait to be written or acknowledged.") { ConnectionId = Id };
    }

    /// <summary>
    /// A lower bound of the payload's size, without encoding it: <c>["name",...]</c> with each string at least one byte
    /// a character (UTF-8 never takes fewer) and anything else at least one byte.
    /// </summary>
    internal static long MinimumPayloadBytes(string? eventName, ReadOnlySpan<object?> args)
    {
        long bytes = 4 + (eventName?.Length ?? 0);
        foreach (var arg in args)
        {
            bytes += arg is string s ? s.Length + 3 : 2;
        }

        return bytes;
    }

    /// <summary>Queues a posted message (or a broadcast's copy); false when it was not accepted.</summary>
    internal bool Enqueue(OutboundMessage message)
    {
        if (!TryEnqueue(message) && !TryFollowSession(message))
        {
            return false;
        }

        return !message.IsFailed;
    }

    /// <summary>The application's sends written and awaiting the peer's acknowledgement (bounded by <see cref="ConnectionOptions.MaxPendingAcks"/>). Under <c>_gate</c>.</summary>
    private int PendingAcksLocked => _unacked.Count + _inflight.Count - _protocolInflight;

    /// <summary>Validates and encodes an application event once (awaited: a <see cref="Send"/>).</summary>
    internal static OutboundMessage? CreateMessage(string eventName, ReadOnlySpan<object?> args, JsonSerializer serializer, WireProtocol? wire, ConnectionOptions limits, out Exception? error)
        => CreateMessage(eventName, args, serializer, awaited: true, null, wire, limits, out error);

    /// <summary>
    /// Validates and encodes an application event once; <paramref name="awaited"/> false for a posted event. The name
    /// rules and the number of arguments depend on the <paramref name="wire"/> (null = either uhura wire). An event the
    /// peer would refuse (<see cref="RefusePoison"/>) fails here, before anything is queued: sent, it would only end the
    /// link, and be sent again on every new one.
    /// </summary>
    internal static OutboundMessage? CreateMessage(string eventName, ReadOnlySpan<object?> args, JsonSerializer serializer, bool awaited, IObserver<SendException>? failureSink, WireProtocol? wire, ConnectionOptions limits, out Exception? error)
    {
        ValidateEventName(eventName, wire);
        if (wire == WireProtocol.SocketIpc)
        {
            if (args.Length > 1)
            {
                error = new EncodeException(eventName, $"socket-ipc carries one message per topic, not {args.Length}: send one array or object.");
                return null;
            }
        }

        byte[] payload;
        int nameEnd;
        bool strict;
        try
        {
            payload = NodeWireCodec.EncodePayload(eventName, args, serializer, out nameEnd, out strict);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Serializing runs the application's code (converters, getters, ToString): whatever it throws, the send fails
            // as one that cannot be encoded, never with a raw exception from Send.
            error = new EncodeException(eventName, ex);
            return null;
        }

        error = RefusePoison(eventName, payload, nameEnd, strict, wire, limits);
        return error is null ? new OutboundMessage(eventName, payload, awaited, nameEnd, failureSink) : null;
    }

    /// <summary>Bytes a frame adds around the payload on the JSON wires (object form with its id, socket-ipc's keys and delimiter), at most.</summary>
    private const int JsonFrameOverhead = 128;

    /// <summary>
    /// Checks an encoded payload against what the receiving side's decoder accepts, with this side's limits (the native
    /// handshake announces none, so both ends are expected to share them): a frame larger than
    /// <see cref="ConnectionOptions.MaxMessageSize"/> is a <see cref="FrameTooLargeException"/>; JSON that is not strict
    /// (Newtonsoft writes <c>undefined</c>, <c>NaN</c> or <c>Infinity</c> for some values, which neither a .NET peer nor
    /// Node's JSON parser accepts), invalid UTF-8 or nesting deeper than <see cref="ConnectionOptions.MaxJsonDepth"/> is an
    /// <see cref="EncodeException"/>. Only the bytes already encoded are read: nothing is serialized twice, and a
    /// <paramref name="strict"/> payload (simple values only, one level deep, written by the library's own writer) is
    /// not read again.
    /// </summary>
    private static Exception? RefusePoison(string eventName, byte[] payload, int nameEnd, bool strict, WireProtocol? wire, ConnectionOptions limits)
    {
        // A native frame carries the name's UTF-8 length in 16 bits. Checked here, not when the frame is written: by then
        // the event has its sequence number, and a refusal would leave a gap that ends the link. (The name's JSON form,
        // between its quotes, is never shorter than its UTF-8 form, so the count is only made for long names.)
        if (wire is not (WireProtocol.NodeUhura or WireProtocol.SocketIpc) && nameEnd - 3 > ushort.MaxValue
            && System.Text.Encoding.UTF8.GetByteCount(eventName) > ushort.MaxValue)
        {
            return new EncodeException(eventName[..Math.Min(eventName.Length, 64)] + "…", $"the name is {System.Text.Encoding.UTF8.GetByteCount(eventName)} bytes of UTF-8; the native wire carries names of at most {ushort.MaxValue}.");
        }

        long frame = wire == WireProtocol.Native
            ? 11 + (nameEnd - 3) + (payload[nameEnd] == (byte)',' ? payload.Length - nameEnd : 2) // type, seq, name length, name, args
            : payload.Length + JsonFrameOverhead;
        if (frame > limits.MaxMessageSize)
        {
            return new FrameTooLargeException(limits.MaxMessageSize, $"The event '{eventName}' encodes to a {frame}-byte frame, over the maximum of {limits.MaxMessageSize} bytes the peer accepts; nothing was sent.");
        }

        if (strict)
        {
            return null; // one level deep, and MaxJsonDepth is at least 2
        }

        try
        {
            // The Node wire's object form nests the payload one level deeper ({"args": [...]}).
            JsonArgs.ValidateArray(payload, wire == WireProtocol.Native || wire == WireProtocol.SocketIpc ? limits.MaxJsonDepth : limits.MaxJsonDepth - 1, "arguments");
            return null;
        }
        catch (Exception ex) when (ex is DecodeException or ProtocolException)
        {
            return new EncodeException(eventName, ex);
        }
    }

    /// <summary>The name rules of <paramref name="wire"/>: socket-ipc takes any topic, even empty; the uhura wires reserve their own names.</summary>
    private static void ValidateEventName(string eventName, WireProtocol? wire)
    {
        if (wire == WireProtocol.SocketIpc)
        {
            ArgumentNullException.ThrowIfNull(eventName);
        }
        else
        {
            ValidateEventName(eventName);
        }
    }

    /// <summary>Names the Node wire uses for itself cannot be sent as application events.</summary>
    internal static void ValidateEventName(string eventName)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventName);
        if (eventName[0] == '_' || eventName.StartsWith("ack::", StringComparison.Ordinal)
            || eventName is "start" or "connect" or "invalidateSession")
        {
            throw new ArgumentException($"'{eventName}' is reserved by the uhura protocol (names starting with '_' or 'ack::', 'start', 'connect', 'invalidateSession').", nameof(eventName));
        }
    }

    /// <summary>
    /// Queues or writes an encoded event; a bounded-queue failure completes the message, never throws. Returns false,
    /// leaving the message untouched, when the link is closing: its owner decides (a client queues it for the next link).
    /// </summary>
    internal bool TryEnqueue(OutboundMessage message)
    {
        lock (_gate)
        {
            if (_closing || _outputEnded)
            {
                return false; // this link writes no more (the peer closed, or it is closing): the caller keeps the send for the next
            }

            var overBytes = _heldBytes > 0 && _heldBytes + message.Payload.Length > _options.MaxQueuedBytes;
            if (!_handshakeDone)
            {
                if (_preReady.Count >= _options.MaxQueuedMessages || overBytes)
                {
                    message.Fail(new OutboundBufferFullException(message.Name, $"{_preReady.Count} sends ({_heldBytes} bytes) already wait for the handshake.") { ConnectionId = Id });
                    return true;
                }

                _preReady.Enqueue(message);
                _heldBytes += message.Payload.Length;
                return true;
            }

            if (overBytes && !_outputEnded)
            {
                // Bytes held for a peer that does not take them fast enough: bounded like the bytes waiting to be written.
                if (_options.SlowConsumerPolicy == SlowConsumerPolicy.Disconnect)
                {
                    DisconnectSlowConsumerLocked(message, $"{_heldBytes} bytes of events waited to be written or acknowledged (MaxQueuedBytes {_options.MaxQueuedBytes})");
                }
                else
                {
                    message.Fail(new OutboundBufferFullException(message.Name, $"{_heldBytes} bytes of events already wait to be written or acknowledged.") { ConnectionId = Id });
                }

                return true;
            }

            WriteMessageLocked(message);
            return true;
        }
    }

    /// <summary>Queues several messages in order (a client handing its queue to a new link).</summary>
    internal void EnqueueRange(IEnumerable<OutboundMessage> messages)
    {
        lock (_gate)
        {
            foreach (var message in messages)
            {
                if (_handshakeDone)
                {
                    WriteMessageLocked(message);
                }
                else
                {
                    _preReady.Enqueue(message);
                    _heldBytes += message.Payload.Length; // handed over: counted, never refused
                }
            }
        }
    }

    /// <summary>Takes the next send that waited for the handshake (it is counted again if it is written).</summary>
    private bool TakePreReadyLocked([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out OutboundMessage? message)
    {
        if (!_preReady.TryDequeue(out message))
        {
            return false;
        }

        _heldBytes -= message.Payload.Length;
        return true;
    }

    void ISessionSink.SendSet(string key, JToken value)
    {
        if (_wire == WireProtocol.SocketIpc)
        {
            return; // socket-ipc has no session: it stays on this side
        }

        if (_wire == WireProtocol.Native)
        {
            WriteNativeSet(new JObject { [key] = value });
        }
        else
        {
            NoteSetDuringHandshake(key);
            WriteInternal(NodeWireCodec.EncodePayload("_set", [key, value], _serializer));
        }
    }

    void ISessionSink.SendSetMany(JObject values)
    {
        if (_wire == WireProtocol.SocketIpc)
        {
            return;
        }

        if (_wire == WireProtocol.Native)
        {
            WriteNativeSet(values);
        }
        else
        {
            foreach (var property in values.Properties())
            {
                NoteSetDuringHandshake(property.Name);
            }

            WriteInternal(NodeWireCodec.EncodePayload("_set", [values], _serializer));
        }
    }
}
