using System.Threading.Channels;

namespace Rx.Uhura.Internal;

/// <summary>What a link's read loop hands to its dispatcher: an event to deliver, an acknowledgement to send after it, or the end of the link.</summary>
internal readonly struct Delivery
{
    private Delivery(Connection link, UhuraEvent? e, string? ackId, long ackSeq, bool completion)
    {
        Link = link;
        Event = e;
        AckId = ackId;
        AckSeq = ackSeq;
        IsCompletion = completion;
    }

    /// <summary>The link the event came from (its subscribers are called, its peer gets the ack).</summary>
    public Connection Link { get; }

    /// <summary>The event, or null for an acknowledgement alone (a duplicate or an internal event).</summary>
    public UhuraEvent? Event { get; }

    /// <summary>Node wire: the message id to acknowledge once delivered.</summary>
    public string? AckId { get; }

    /// <summary>Native: the sequence number to acknowledge (cumulatively) once delivered; 0 for none.</summary>
    public long AckSeq { get; }

    /// <summary>The link ended: complete its streams after everything queued before.</summary>
    public bool IsCompletion { get; }

    public static Delivery Of(Connection link, UhuraEvent? e, string? ackId, long ackSeq) => new(link, e, ackId, ackSeq, false);

    public static Delivery Completion(Connection link) => new(link, null, null, 0, true);
}

/// <summary>
/// The one serial dispatcher of a link (a server's connection) or of a client (all its links in turn): read loops
/// enqueue, one pump calls the subscribers outside every library lock and then acknowledges. The queue is bounded by
/// back-pressure: a read loop that finds it full (<see cref="IsFull"/>) waits for <see cref="WhenSpaceAsync"/> before reading on.
/// </summary>
internal sealed class EventDispatcher
{
    /// <summary>Acks owed are written at least every this many delivered events, and whenever the queue runs empty (native: one cumulative ack).</summary>
    private const int AckEvery = 64;

    private readonly Channel<Delivery> _queue = Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Microsoft.Extensions.Logging.ILogger _logger;
    private TaskCompletionSource? _space;
    private int _count;

    public EventDispatcher(int capacity, Microsoft.Extensions.Logging.ILogger logger)
    {
        _capacity = Math.Max(1, capacity);
        _logger = logger;
        Completion = Task.Run(PumpAsync);
    }

    /// <summary>Ends when <see cref="Complete"/> was called and everything queued was dispatched.</summary>
    public Task Completion { get; }

    /// <summary>True when the queue holds its capacity or more: the read loop should wait before reading on.</summary>
    public bool IsFull => Volatile.Read(ref _count) >= _capacity;

    /// <summary>
    /// Queues one delivery (never blocks: the bound is kept by the read loop's wait on <see cref="WhenSpaceAsync"/>).
    /// False when the dispatcher was completed (its owner is gone).
    /// </summary>
    public bool Enqueue(in Delivery delivery)
    {
        Interlocked.Increment(ref _count);
        if (_queue.Writer.TryWrite(delivery))
        {
            return true;
        }

        Interlocked.Decrement(ref _count);
        return false;
    }

    /// <summary>Completes once the queue has room again (below its capacity).</summary>
    public Task WhenSpaceAsync()
    {
        lock (_gate)
        {
            if (!IsFull)
            {
                return Task.CompletedTask;
            }

            var space = _space is { Task.IsCompleted: false } waiting ? waiting : new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _space, space); // a full fence: the pump's release either sees it or left room seen below
            if (!IsFull)
            {
                space.TrySetResult();
            }

            return space.Task;
        }
    }

    /// <summary>No more deliveries: the pump ends after those queued.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    private async Task PumpAsync()
    {
        var reader = _queue.Reader;
        Connection? ackOwedBy = null;
        var sinceAck = 0;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var delivery))
            {
                if (ackOwedBy is not null && (!ReferenceEquals(ackOwedBy, delivery.Link) || sinceAck >= AckEvery))
                {
                    ackOwedBy.FlushAcks();
                    ackOwedBy = null;
                    sinceAck = 0;
                }

                try
                {
                    var pending = delivery.Link.DispatchAsync(delivery);
                    if (!pending.IsCompletedSuccessfully)
                    {
                        if (ackOwedBy is not null)
                        {
                            ackOwedBy.FlushAcks(); // what was delivered before is not held while this waits
                            ackOwedBy = null;
                            sinceAck = 0;
                        }

                        await pending.ConfigureAwait(false);
                    }
                }
                catch (Exception ex)
                {
                    // Subscribers are guarded; this is the library's own failure, which must not stop the pump.
                    Microsoft.Extensions.Logging.LoggerExtensions.LogError(_logger, ex, "Dispatching an event of {Connection} failed", delivery.Link);
                }

                if (delivery.AckSeq > 0 || delivery.AckId is not null)
                {
                    ackOwedBy = delivery.Link;
                    sinceAck++;
                }

                Released();
            }

            if (ackOwedBy is not null)
            {
                ackOwedBy.FlushAcks();
                ackOwedBy = null;
                sinceAck = 0;
            }
        }
    }

    private void Released()
    {
        var left = Interlocked.Decrement(ref _count);
        if (left < _capacity && Volatile.Read(ref _space) is not null)
        {
            TaskCompletionSource? space;
            lock (_gate)
            {
                space = _space;
                _space = null;
            }

            space?.TrySetResult();
        }
    }
}
