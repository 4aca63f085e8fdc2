using Rx.Uhura.Internal;
using Rx.Uhura.Session;
using Rx.Uhura.Transport;

namespace Rx.Uhura;

public sealed partial class UhuraClient
{
    /// <summary>Sends waiting for a link (for the <c>uhura.outbound.queued</c> gauge).</summary>
    internal int QueuedCount
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>
    /// Sends an event to the server. Sends made before the link is ready are queued (at most
    /// <see cref="ConnectionOptions.MaxQueuedMessages"/>) and go out in order. The task completes when the server
    /// acknowledged the event and fails with a <see cref="SendException"/> when it cannot be delivered (an
    /// <see cref="EncodeException"/> or <see cref="FrameTooLargeException"/> at once, nothing queued, for an event the
    /// server would refuse).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    public Task Send(string eventName, params ReadOnlySpan<object?> args)
    {
        if (Connection?.RefusedForBytes(eventName, args, _options.Protocol) is { } full)
        {
            return Task.FromException(full);
        }

        var message = Rx.Uhura.Connection.CreateMessage(eventName, args, _serializer, _options.Protocol, _options.Connection, out var error);
        if (message is null)
        {
            return Task.FromException(error!);
        }

        Submit(message);
        return message.Completion!.Task;
    }

    /// <summary>
    /// Sends an event without a task of its own: cheaper than <see cref="Send"/> when the caller does not need to know
    /// when each event arrived. It is queued, resent after a reconnection and acknowledged exactly like a send, and
    /// events reach the server in the order they were sent, so awaiting a later <see cref="Send"/> confirms every event
    /// posted before it. Returns false when it was not accepted (the client is closing, or the queue is full under
    /// <see cref="QueueFullPolicy.Reject"/>); a posted event that is accepted and then cannot be delivered is reported
    /// on <see cref="Dropped"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="eventName"/> is empty or reserved by the protocol.</exception>
    /// <exception cref="EncodeException">An argument cannot be serialized, or not as JSON the peer accepts.</exception>
    /// <exception cref="FrameTooLargeException">The event's frame would exceed <see cref="ConnectionOptions.MaxMessageSize"/>.</exception>
    public bool Post(string eventName, params ReadOnlySpan<object?> args)
    {
        if (Connection?.RefusedForBytes(eventName, args, _options.Protocol) is { } full)
        {
            _droppedSink.OnNext(full); // as the link reports a posted event it refuses
            return false;
        }

        var message = Rx.Uhura.Connection.CreateMessage(eventName, args, _serializer, awaited: false, _droppedSink, _options.Protocol, _options.Connection, out var error) ?? throw error!;
        Submit(message);
        return !message.IsFailed;
    }

    /// <summary>Hands a send to the link, or queues it; failures are reported outside the lock.</summary>
    private void Submit(OutboundMessage message)
    {
        Exception? refused = null;
        List<OutboundMessage>? dropped = null;
        lock (_gate)
        {
            if (_closing)
            {
                refused = new SendAfterCloseException(message.Name);
            }
            else
            {
                // Node wire: numbered under the lock that fixes the send order, so sequence numbers rise along the wire.
                // (The native protocol numbers events as it writes them, from the stream that outlives links.)
                if (_options.Protocol == WireProtocol.NodeUhura)
                {
                    message.Seq = ++_nextSeq;
                }

                if (_link is { } link && link.TryEnqueue(message))
                {
                    return;
                }

                if (!_options.QueuesWhileDisconnected)
                {
                    refused = new NoServerException(message.Name);
                }
                else if (!QueueLocked(message, out dropped))
                {
                    refused = new OutboundBufferFullException(message.Name, $"{_queue.Count} sends ({_queuedBytes} bytes) already wait for a connection.");
                }
            }
        }

        if (refused is not null)
        {
            message.Refuse(refused);
        }

        foreach (var oldest in dropped ?? [])
        {
            var error = new OutboundBufferFullException(oldest.Name, $"it was dropped: the sends waiting for a connection reached their bound ({_options.Connection.MaxQueuedMessages} sends, {_options.Connection.MaxQueuedBytes} bytes) and a newer one arrived.");
            oldest.Fail(error);
            if (oldest.FailureSink is null)
            {
                _droppedSink.OnNext(error); // a posted event reported itself there already
            }
        }
    }

    /// <summary>
    /// Sends that failed where no task reports them: those dropped from the full queue under
    /// <see cref="QueueFullPolicy.DropOldest"/> (an <see cref="OutboundBufferFullException"/>, also the error their task
    /// failed with), and events sent with <see cref="Post"/> that were accepted but could not be delivered. Completes
    /// when the client closes.
    /// </summary>
    public IObservable<SendException> Dropped => _guardedDropped;

    /// <summary>
    /// Queues for the next link, applying the overflow policy to both bounds (sends and bytes): false when the queue is
    /// full and the policy rejects; <paramref name="dropped"/> are the oldest sends, taken out to make room, for the caller
    /// to fail outside the lock.
    /// </summary>
    private bool QueueLocked(OutboundMessage message, out List<OutboundMessage>? dropped)
    {
        dropped = null;
        var limits = _options.Connection;
        bool Full() => _queue.Count >= limits.MaxQueuedMessages
            || (_queue.Count > 0 && _queuedBytes + message.Payload.Length > limits.MaxQueuedBytes);
        if (Full() && (_options.QueueFullPolicy == QueueFullPolicy.Reject || _requeuedAhead > 0))
        {
            return false; // handed-back sends count against the bound but are never dropped for it: the new one is refused
        }

        while (Full())
        {
            var oldest = _queue.Dequeue();
            _queuedBytes -= oldest.Payload.Length;
            (dropped ??= []).Add(oldest);
        }

        _queue.Enqueue(message);
        _queuedBytes += message.Payload.Length;
        return true;
    }

    /// <summary>
    /// A link ended with sends it could not deliver: unless the client is closing they go back to the front of the
    /// queue, in order, for the next link (accepted sends are never dropped for that, even past the queue's bound).
    /// </summary>
    private void Requeue(IReadOnlyList<OutboundMessage> undelivered, Exception? error)
    {
        if (undelivered.Count == 0)
        {
            return;
        }

        lock (_gate)
        {
            if (!_closing && _options.QueuesWhileDisconnected)
            {
                var waiting = _queue.ToArray();
                _queue.Clear();
                foreach (var message in undelivered)
                {
                    _queue.Enqueue(message);
                    _queuedBytes += message.Payload.Length; // counted, never refused: they were accepted
                }

                foreach (var message in waiting)
                {
                    _queue.Enqueue(message);
                }

                _requeuedAhead += undelivered.Count;
                return;
            }
        }

        foreach (var message in undelivered)
        {
            message.Fail(new ConnectionLostException(message.Name, error));
        }
    }
}
