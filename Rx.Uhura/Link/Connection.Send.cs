using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Rx.Uhura.Session;

namespace Rx.Uhura;

public sealed partial class Connection : ISessionSink, IOutboxOwner, ILinkReadHandler, IDispatchTarget
{
    private readonly Lock _gate = new();
    private readonly Queue<OutboundMessage> _preReady = new();
    private readonly Dictionary<long, OutboundMessage> _inflight = new(); // Node wire: acknowledged one by one, by id
    private int _protocolInflight; // of _inflight, the Node wire's own messages ('connect'): not the application's sends
    private readonly Queue<OutboundMessage> _unacked = new();              // native: in sequence order, acknowledged cumulatively
    private readonly Outbox _outbox; // the bytes on their way out and the one writer
    private bool _endedUndelivered;
    private TaskCompletionSource<bool>? _idle; // true: idle reached; false: the link ended with events undelivered
    private long _nextSeq;
    private long _heldBytes; // payload bytes of the messages in the collections above (bounded by ConnectionOptions.MaxQueuedBytes)
    private bool _objectMode;
    private bool _acksEnabled;
    private bool _wroteFirst;
    private bool _closing; // this side began the close (or the link ended): who closes, beside how far the link got (_phase)
    private int _phase;    // a LinkProgress, only ever raised (Reach)
    private HandshakeProgress _handshake;

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
        if (RefusedForBytes(eventName, args, _handler?.Protocol) is { } full)
        {
            return Task.FromException(full);
        }

        var message = CreateMessage(eventName, args, _serializer, _handler?.Protocol, _options, out var error);
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
        if (_handler is not { FollowsSession: true } || _serverSession is not { } session || _invalidated)
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
        if (RefusedForBytes(eventName, args, _handler?.Protocol) is not null)
        {
            return false;
        }

        var message = CreateMessage(eventName, args, _serializer, awaited: false, null, _handler?.Protocol, _options, out var error) ?? throw error!;
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
                || (HandshakeDone && _options.SlowConsumerPolicy != SlowConsumerPolicy.FailSend))
            {
                return null;
            }
        }

        ValidateEventName(eventName, wire); // a misuse is reported as such, full or not
        return new OutboundBufferFullException(eventName, $"{held} bytes of events already wait to be written or acknowledged.") { ConnectionId = Id };
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

    /// <summary>
    /// Queues or writes an encoded event; a bounded-queue failure completes the message, never throws. Returns false,
    /// leaving the message untouched, when the link is closing: its owner decides (a client queues it for the next link).
    /// </summary>
    internal bool TryEnqueue(OutboundMessage message)
    {
        lock (_gate)
        {
            if (_closing || OutputHasEnded)
            {
                return false; // this link writes no more (the peer closed, or it is closing): the caller keeps the send for the next
            }

            var overBytes = _heldBytes > 0 && _heldBytes + message.Payload.Length > _options.MaxQueuedBytes;
            if (!HandshakeDone)
            {
                if (_preReady.Count >= _options.MaxQueuedMessages || overBytes)
                {
                    message.Fail(new OutboundBufferFullException(message.Name, $"{_preReady.Count} sends ({_heldBytes} bytes) already wait for the handshake.") { ConnectionId = Id });
                    return true;
                }

                message.StampOrder();
                _preReady.Enqueue(message);
                _heldBytes += message.Payload.Length;
                return true;
            }

            if (overBytes && !OutputHasEnded)
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
                if (HandshakeDone)
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

    void ISessionSink.SendSet(string key, JToken value) => Handler.SendSet(key, value);

    void ISessionSink.SendSetMany(JObject values) => Handler.SendSetMany(values);
}
