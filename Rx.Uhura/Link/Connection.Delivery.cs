using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;

namespace Rx.Uhura;

public sealed partial class Connection
{
    /// <summary>Client: where this link's events go next, after its own <see cref="Events"/> (the client's stream).</summary>
    internal IObserver<UhuraEvent>? ForwardEventsTo { get; set; }

    /// <summary>Client: where a throwing subscriber is reported (the client's <c>Errors</c>); a server reports to its own.</summary>
    internal Action<UhuraException>? ErrorSink { get; set; }

    /// <summary>A subscriber of one of this link's streams threw: logged, then reported on the owner's error stream.</summary>
    internal void ReportSubscriberError(SubscriberException error)
    {
        error.ConnectionId ??= Id;
        _logger.LogError(error.InnerException, "Connection {Id}: a subscriber of {Stream} threw (event {Event})", Id, error.StreamName, error.EventName);
        try
        {
            if (_server is not null)
            {
                _server.ReportError(error);
            }
            else
            {
                ErrorSink?.Invoke(error);
            }
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Connection {Id}: reporting a subscriber's error failed", Id);
        }
    }

    /// <summary>Queues an event (or an acknowledgement alone) for the dispatcher; called by the read loop.</summary>
    private void Dispatch(UhuraEvent? e, string? ackId, long ackSeq)
    {
        if (e is not null)
        {
            MarkProgress();
            Diagnostics.UhuraMetrics.EventsReceived.Add(1, _sideTag);
            _eventsIn++;
        }

        if (_batch == BatchState.Open)
        {
            // In a read batch: counted, and the pump woken, once, when the batch ends or before the read loop waits.
            _dispatcher.EnqueueInBatch(Delivery.Of(this, e, ackId, ackSeq));
            _batchDeliveries++;
        }
        else if (_batch == BatchState.None)
        {
            _dispatcher.Enqueue(Delivery.Of(this, e, ackId, ackSeq));
        }

        // BatchState.Refused: the dispatcher completed (the link's owner is gone); nothing is delivered any more.
    }

    /// <summary>Whether the read loop is inside a batch of its dispatcher (only the read loop's flow reads or sets it; the batch may span awaits).</summary>
    private BatchState _batch;

    /// <summary>Deliveries the read loop queued in its batch and has not yet counted with the dispatcher (the read loop's flow only).</summary>
    private int _batchDeliveries;

    /// <summary>Counts what the read loop queued and wakes the pump; called at the end of a read batch and before any wait.</summary>
    private void SignalDeliveries()
    {
        if (_batchDeliveries > 0)
        {
            var queued = _batchDeliveries;
            _batchDeliveries = 0;
            _dispatcher.Publish(queued);
        }
    }

    private enum BatchState : byte
    {
        /// <summary>Outside a read batch: each delivery is queued on its own.</summary>
        None,

        /// <summary>In a read batch: deliveries are queued and counted at its end.</summary>
        Open,

        /// <summary>In a read batch begun after the dispatcher completed: nothing is queued.</summary>
        Refused,
    }

    /// <summary>
    /// The dispatcher's call: delivers one event to this link's subscribers (then the client's, or the server's merged
    /// stream), and acknowledges it once they all returned; or, at the end, completes the link's streams.
    /// </summary>
    ValueTask IDispatchTarget.DispatchAsync(Delivery delivery) => DispatchAsync(delivery);

    void IDispatchTarget.FlushAcks() => FlushAcks();

    internal ValueTask DispatchAsync(Delivery delivery)
    {
        if (delivery.IsCompletion)
        {
            _events.OnCompleted(); // observers are guarded: nothing throws here
            if (IsServer)
            {
                Session.Complete(); // a server link's session object is its own (a client's outlives its links)
            }

            _shutdownCompleted.TrySetResult();
            return ValueTask.CompletedTask;
        }

        if (delivery.Event is { } e)
        {
            _events.OnNext(e);
            if (ForwardEventsTo is { } forward)
            {
                forward.OnNext(e);
            }

            if (_server?.MergedEvents is { HasSubscribers: true } merged)
            {
                return merged.PublishAsync(this, delivery); // acknowledged when the merged subscribers took it too
            }
        }

        if (_ackChainTail is { IsDone: false })
        {
            NewAckCountdown(delivery, 0).Signal(); // after the events still held by merged subscribers
        }
        else
        {
            Acknowledge(delivery, flush: false);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Dispatcher: a countdown for an event handed to <paramref name="takers"/> merged subscribers, acknowledged after
    /// them and after this link's previous such event (the caller signals once more when it has handed it to all).
    /// </summary>
    internal AckCountdown NewAckCountdown(in Delivery delivery, int takers)
    {
        var countdown = new AckCountdown(this, delivery, takers, _ackChainTail);
        _ackChainTail = countdown;
        return countdown;
    }

    /// <summary>
    /// The event was delivered: acknowledge it. Without <paramref name="flush"/> (the dispatcher's own call) the ack is
    /// owed and written with the others of the run by <see cref="FlushAcks"/>: Node acks together, native ones as
    /// one cumulative ack.
    /// </summary>
    internal void Acknowledge(in Delivery delivery, bool flush)
    {
        if (delivery.AckId is { } id)
        {
            if (flush)
            {
                SendAck(id);
            }
            else
            {
                (_nodeAcksOwed ??= []).Add(id);
            }
        }
        else if (delivery.AckSeq > 0)
        {
            if (!flush)
            {
                // The dispatcher's own call: noted in a field only it writes, published by FlushAcks (which it calls at
                // least every AckEvery events, before it waits, when its queue runs empty and before a completion), so
                // a run of deliveries costs no shared write per event. A resend's ack may come after later events.
                if (delivery.AckSeq > _dispatcherDelivered)
                {
                    _dispatcherDelivered = delivery.AckSeq;
                }

                return;
            }

            NoteDelivered(delivery.AckSeq);
            FlushAcks();
        }
    }

    /// <summary>The dispatcher's: the highest sequence number it delivered and acknowledged, not yet published by <see cref="FlushAcks"/>.</summary>
    private long _dispatcherDelivered;

    /// <summary>Everything up to <paramref name="seq"/> was delivered: the resume point and (with acks) the delivered watermark rise to it.</summary>
    private void NoteDelivered(long seq)
    {
        _native?.NoteDelivered(seq);
        if (!Volatile.Read(ref _acksEnabled))
        {
            return; // set by the handshake, before any event was queued
        }

        // Raised by the dispatcher and by merged subscribers' countdowns, never lowered; FlushAcks reads it.
        Internal.AtomicMax.Raise(ref _deliveredUpTo, seq);
    }

    /// <summary>Writes the acks the dispatcher owes: Node wire, each id; native, one cumulative ack for what was delivered since the last one.</summary>
    internal void FlushAcks()
    {
        if (Volatile.Read(ref _dispatcherDelivered) is > 0 and var noted)
        {
            NoteDelivered(noted); // another thread (a merged subscriber's countdown) may see an older value: the dispatcher flushes again
        }

        if (_nodeAcksOwed is { Count: > 0 } owed)
        {
            SendAcks(owed);
            owed.Clear();
        }

        long upTo;
        TaskCompletionSource? waiter = null;
        lock (_gate)
        {
            var delivered = Volatile.Read(ref _deliveredUpTo);
            if (delivered <= _ackWrittenUpTo)
            {
                upTo = 0;
            }
            else
            {
                upTo = _ackWrittenUpTo = delivered;
            }

            if (_ackWaiter is { } w && _ackWrittenUpTo >= _ackWaiterTarget)
            {
                waiter = w;
                _ackWaiter = null;
            }
        }

        if (upTo > 0)
        {
            WriteNativeAck(upTo);
        }

        waiter?.TrySetResult(); // after the ack is in the outbound buffer
    }

    /// <summary>One waiter for an ack covering <see cref="_ackWaiterTarget"/> to be written (an event refusal). Under <c>_gate</c>.</summary>
    private TaskCompletionSource? _ackWaiter;

    private long _ackWaiterTarget;

    /// <summary>Completes once a native ack covering <paramref name="upTo"/> is in the outbound buffer (at once if one is).</summary>
    private Task WhenAckWrittenAsync(long upTo)
    {
        lock (_gate)
        {
            if (_ackWrittenUpTo >= upTo)
            {
                return Task.CompletedTask;
            }

            _ackWaiterTarget = upTo;
            _ackWaiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _ackWaiter.Task;
        }
    }
}
