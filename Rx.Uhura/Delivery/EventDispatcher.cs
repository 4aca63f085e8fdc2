namespace Rx.Uhura.Internal;

/// <summary>
/// What delivers and acknowledges what an <see cref="EventDispatcher"/> hands it: a <see cref="Connection"/> (its
/// subscribers, then the peer's ack) or a mesh node (its streams, then the bus peer's delivered position).
/// </summary>
internal interface IDispatchTarget
{
    /// <summary>Calls the subscribers of <paramref name="delivery"/> (guarded: nothing they throw escapes) and notes what it owes; or completes the streams at the end.</summary>
    ValueTask DispatchAsync(Delivery delivery);

    /// <summary>Writes the acknowledgements owed for what was dispatched since the last flush (the pump calls it in runs).</summary>
    void FlushAcks();
}

/// <summary>What a read loop (or a timer, or an API call) hands to a dispatcher: an item to deliver, what to acknowledge after it, or the end of its target's streams.</summary>
internal readonly struct Delivery
{
    /// <summary>What <see cref="_extra"/> holds for the end of a target's streams.</summary>
    private static readonly object CompletionMarker = new();

    // The Node wire's ack id, a mesh bus's peer state, a barrier, or the completion marker: one field for all (they never
    // go together), so a queued delivery is four words and an int.
    private readonly object? _extra;

    private Delivery(IDispatchTarget target, object? item, object? extra, long ackSeq, int epoch)
    {
        Target = target;
        Item = item;
        _extra = extra;
        AckSeq = ackSeq;
        Epoch = epoch;
    }

    /// <summary>Who delivers it and acknowledges it.</summary>
    public IDispatchTarget Target { get; }

    /// <summary>What the subscribers get (an event, a mesh message or notification), or null for an acknowledgement alone.</summary>
    public object? Item { get; }

    /// <summary>A link's event, or null for an acknowledgement alone (a duplicate or an internal event).</summary>
    public UhuraEvent? Event => Item as UhuraEvent;

    /// <summary>Native: the sequence number to acknowledge (cumulatively) once delivered; mesh bus: the frame's number; 0 for none.</summary>
    public long AckSeq { get; }

    /// <summary>Mesh bus: the peer's incarnation the frame's number belongs to.</summary>
    public int Epoch { get; }

    /// <summary>Node wire: the message id to acknowledge once delivered.</summary>
    public string? AckId => _extra as string;

    /// <summary>What the target keeps to acknowledge the delivery (a mesh bus's peer state), or null.</summary>
    public object? AckState => _extra is string or TaskCompletionSource || ReferenceEquals(_extra, CompletionMarker) ? null : _extra;

    /// <summary>True when the target owes an acknowledgement once the subscribers returned.</summary>
    public bool OwesAck => AckSeq > 0 || _extra is string;

    /// <summary>The target ended: complete its streams after everything queued before.</summary>
    public bool IsCompletion => ReferenceEquals(_extra, CompletionMarker);

    /// <summary>Completed by the pump once everything queued before it was delivered and its acknowledgements written.</summary>
    public TaskCompletionSource? Barrier => _extra as TaskCompletionSource;

    public static Delivery Of(Connection link, UhuraEvent? e, string? ackId, long ackSeq) => new(link, e, ackId, ackSeq, 0);

    /// <summary>An item to deliver; with <paramref name="ackState"/>, the target acknowledges <paramref name="ackSeq"/> of <paramref name="epoch"/> after it.</summary>
    public static Delivery Of(IDispatchTarget target, object? item, object? ackState = null, int epoch = 0, long ackSeq = 0) => new(target, item, ackState, ackSeq, epoch);

    public static Delivery Completion(IDispatchTarget target) => new(target, null, CompletionMarker, 0, 0);

    public static Delivery BarrierOf(IDispatchTarget target, TaskCompletionSource barrier) => new(target, null, barrier, 0, 0);
}

/// <summary>
/// The one serial dispatcher of a link (a server's connection), of a client (all its links in turn) and of a mesh node
/// (all its links, timers and API calls): producers enqueue, one pump calls the subscribers outside every library lock
/// and then acknowledges. The queue is bounded by back-pressure: a read loop that finds it full (<see cref="IsFull"/>)
/// waits for <see cref="WhenSpaceAsync"/> before reading on. A read loop queues a batch's events between
/// <see cref="EnterBatch"/> and <see cref="ExitBatch"/> with <see cref="EnqueueInBatch"/>, and counts and wakes the pump
/// once per read with <see cref="Publish"/>: no lock and no shared counter touched per event on either side (the pump
/// takes what it dispatched off the count in runs).
/// </summary>
internal sealed class EventDispatcher : IThreadPoolWorkItem
{
    /// <summary>Acks owed are written at least every this many delivered events, and whenever the queue runs empty (native: one cumulative ack).</summary>
    private const int AckEvery = 64;

    // Made on the first delivery: an idle server connection (each has its own dispatcher) holds no queue segment.
    private System.Collections.Concurrent.ConcurrentQueue<Delivery>? _queue;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly DeliveryRoom _room;
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private int _writers;    // Enqueue calls past their completion check, not yet done queuing
    private int _completing; // 1 once Complete was called: nothing more is accepted
    private int _pumpState;  // 1 while a pump is scheduled or running (one at a time)
    private long _idleChecks; // times a pump found the queue empty (for tests: a pump that spins would count without end)

    public EventDispatcher(int capacity, Microsoft.Extensions.Logging.ILogger logger)
    {
        _room = new DeliveryRoom(capacity);
        _logger = logger;
    }

    /// <summary>The dispatcher whose pump is calling subscribers on this thread, if any.</summary>
    [ThreadStatic]
    private static EventDispatcher? t_pumping;

    /// <summary>
    /// True inside one of this dispatcher's subscribers (on the pump's thread, before the subscriber returned): an owner
    /// asked to close from there must not wait for the dispatcher, which waits for that subscriber.
    /// </summary>
    public bool IsPumpingOnThisThread => ReferenceEquals(t_pumping, this);

    /// <summary>How many times a pump found the queue empty and decided whether to go idle (diagnostics and tests).</summary>
    internal long IdleChecks => Interlocked.Read(ref _idleChecks);

    /// <summary>Ends when <see cref="Complete"/> was called and everything queued was dispatched.</summary>
    public Task Completion => _completion.Task;

    /// <summary>True when the queue holds its capacity or more: the read loop should wait before reading on.</summary>
    public bool IsFull => _room.IsFull;

    /// <summary>
    /// Queues one delivery and wakes the pump (never blocks: the bound is kept by the read loop's wait on
    /// <see cref="WhenSpaceAsync"/>). False when the dispatcher was completed (its owner is gone).
    /// </summary>
    public bool Enqueue(in Delivery delivery)
    {
        if (!Add(delivery))
        {
            return false;
        }

        Signal();
        return true;
    }

    /// <summary>
    /// A read loop starts a batch: until <see cref="ExitBatch"/> the dispatcher does not complete, so the batch may queue
    /// with <see cref="EnqueueInBatch"/> at the cost of a plain enqueue (no shared counter touched per event). False when
    /// the dispatcher was completed already: then the batch queues nothing (and calls no <see cref="ExitBatch"/>).
    /// </summary>
    public bool EnterBatch()
    {
        Interlocked.Increment(ref _writers); // a full fence before reading _completing (Complete: the reverse)
        if (Volatile.Read(ref _completing) == 0)
        {
            return true;
        }

        Interlocked.Decrement(ref _writers);
        Signal(); // the pump may have seen this writer and left the completion to it
        return false;
    }

    /// <summary>
    /// Queues one delivery of a batch opened by <see cref="EnterBatch"/>, without counting it or waking the pump: the read
    /// loop counts its batch's deliveries itself and hands the count over with <see cref="Publish"/> before it waits for
    /// anything or checks <see cref="IsFull"/>.
    /// </summary>
    public void EnqueueInBatch(in Delivery delivery) => (Volatile.Read(ref _queue) ?? CreateQueue()).Enqueue(delivery);

    /// <summary>Counts <paramref name="queued"/> deliveries queued by <see cref="EnqueueInBatch"/> against the capacity and wakes the pump.</summary>
    public void Publish(int queued)
    {
        _room.Add(queued);
        Signal();
    }

    /// <summary>The batch opened by a successful <see cref="EnterBatch"/> ends: the dispatcher may complete after what it queued.</summary>
    public void ExitBatch()
    {
        Interlocked.Decrement(ref _writers);
        if (Volatile.Read(ref _completing) != 0)
        {
            Signal(); // the pump may have gone idle waiting for this writer
        }
    }

    private bool Add(in Delivery delivery)
    {
        Interlocked.Increment(ref _writers); // a full fence before reading _completing (Complete: the reverse)
        if (Volatile.Read(ref _completing) != 0)
        {
            Interlocked.Decrement(ref _writers);
            Signal(); // the pump may have gone idle waiting for this writer
            return false;
        }

        _room.Add(1);
        (Volatile.Read(ref _queue) ?? CreateQueue()).Enqueue(delivery);
        Interlocked.Decrement(ref _writers);
        return true;
    }

    private bool IsEmpty => Volatile.Read(ref _queue) is not { } queue || queue.IsEmpty;

    private System.Collections.Concurrent.ConcurrentQueue<Delivery> CreateQueue()
    {
        Interlocked.CompareExchange(ref _queue, new System.Collections.Concurrent.ConcurrentQueue<Delivery>(), null);
        return _queue!;
    }

    /// <summary>Makes sure a pump runs if anything is queued (or the end is due).</summary>
    public void Signal()
    {
        if (Volatile.Read(ref _pumpState) == 0 && Interlocked.CompareExchange(ref _pumpState, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false); // its own work item: no allocation per wake-up
        }
    }

    /// <summary>The thread pool runs the pump (queued by <see cref="Signal"/>, at most once at a time).</summary>
    void IThreadPoolWorkItem.Execute() => _ = PumpAsync();

    /// <summary>Completes once the queue has room again (below its capacity).</summary>
    public Task WhenSpaceAsync()
    {
        Signal(); // whatever was queued without a wake-up must drain for room to come
        return _room.WhenSpaceAsync();
    }

    /// <summary>
    /// Completes once every delivery queued before this call was made and the acknowledgements owed for them were
    /// handed to their links (a graceful close waits for it, so that what was delivered is acknowledged before the output
    /// ends). Completes at once when the dispatcher was completed and has drained. Called from a subscriber, it completes
    /// after that subscriber returns: never wait for it synchronously there.
    /// </summary>
    public Task WhenDeliveredAsync(IDispatchTarget link)
    {
        var barrier = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Enqueue(Delivery.BarrierOf(link, barrier)) ? barrier.Task : _completion.Task;
    }

    /// <summary>No more deliveries: the pump ends after those queued, and <see cref="Completion"/> completes.</summary>
    public void Complete()
    {
        Interlocked.Exchange(ref _completing, 1);
        Signal();
    }

    private async Task PumpAsync()
    {
        IDispatchTarget? ackOwedBy = null;
        var sinceAck = 0;
        var released = 0; // dispatched, not yet taken off the room's count (a shared counter: updated once per run of ReleaseEvery)
        try
        {
            while (true)
            {
                while (Volatile.Read(ref _queue) is { } queue && queue.TryDequeue(out var delivery))
                {
                    if (delivery.Barrier is { } barrier)
                    {
                        ackOwedBy?.FlushAcks();
                        ackOwedBy = null;
                        sinceAck = 0;
                        barrier.TrySetResult();
                        Released(ref released, 1, force: true);
                        continue;
                    }

                    // Flushed before a link's completion too: its resume point is published before a next link reads it.
                    if (ackOwedBy is not null && (!ReferenceEquals(ackOwedBy, delivery.Target) || sinceAck >= AckEvery || delivery.IsCompletion))
                    {
                        ackOwedBy.FlushAcks();
                        ackOwedBy = null;
                        sinceAck = 0;
                    }

                    try
                    {
                        t_pumping = this; // for the subscribers' calls back into their owner (IsPumpingOnThisThread)
                        ValueTask pending;
                        try
                        {
                            pending = delivery.Target.DispatchAsync(delivery);
                        }
                        finally
                        {
                            t_pumping = null;
                        }

                        if (!pending.IsCompletedSuccessfully)
                        {
                            if (ackOwedBy is not null)
                            {
                                ackOwedBy.FlushAcks(); // what was delivered before is not held while this waits
                                ackOwedBy = null;
                                sinceAck = 0;
                            }

                            Released(ref released, 0, force: true); // the read loop's room is not held while this waits
                            await pending.ConfigureAwait(false);
                        }
                    }
                    catch (Exception ex)
                    {
                        // Subscribers are guarded; this is the library's own failure, which must not stop the pump.
                        Microsoft.Extensions.Logging.LoggerExtensions.LogError(_logger, ex, "Dispatching to {Target} failed", delivery.Target);
                    }

                    if (delivery.OwesAck)
                    {
                        ackOwedBy = delivery.Target;
                        sinceAck++;
                    }

                    Released(ref released, 1, force: false);
                }

                if (ackOwedBy is not null)
                {
                    ackOwedBy.FlushAcks(); // the queue ran empty: what was delivered is acknowledged now
                    ackOwedBy = null;
                    sinceAck = 0;
                }

                Released(ref released, 0, force: true);

                if (Volatile.Read(ref _completing) != 0 && Volatile.Read(ref _writers) == 0 && IsEmpty)
                {
                    _completion.TrySetResult(); // the pump stays "running": none is scheduled again
                    return;
                }

                // Idle. A delivery queued after the queue was seen empty, Complete, or the last writer leaving after
                // Complete, either sees the pump idle and schedules one, or is seen here (both sides fence before they
                // look at the other's state). While a writer is still in (a read batch may span awaits) the pump does not
                // wait for it here: that writer wakes it when it leaves.
                Interlocked.Increment(ref _idleChecks);
                Interlocked.Exchange(ref _pumpState, 0);
                if ((IsEmpty && (Volatile.Read(ref _completing) == 0 || Volatile.Read(ref _writers) != 0))
                    || Interlocked.CompareExchange(ref _pumpState, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogCritical(_logger, ex, "The event dispatcher failed");
            Interlocked.Exchange(ref _pumpState, 0);
        }
    }

    /// <summary>Deliveries taken off the room's count per update while the pump runs (and whenever it waits or runs empty).</summary>
    private const int ReleaseEvery = 64;

    /// <summary>Notes <paramref name="more"/> dispatched deliveries; takes them off the count every <see cref="ReleaseEvery"/>, or now when <paramref name="force"/>.</summary>
    private void Released(ref int released, int more, bool force)
    {
        released += more;
        if (released == 0 || (!force && released < ReleaseEvery))
        {
            return;
        }

        _room.Release(released);
        released = 0;
    }
}
