using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Rx.Uhura.Mesh.Internal;

/// <summary>
/// One notification for a node's subscribers: a <see cref="MeshMessage"/>, a <see cref="BusEvent"/> or a
/// <see cref="NodeEvent"/> (<see cref="Item"/>), and for a bus frame the position it takes the peer's delivered count to
/// once the subscribers returned (<see cref="Bus"/>, <see cref="Epoch"/>, <see cref="Seq"/>; <see cref="Item"/> is null
/// when the frame brings nothing to deliver, a duplicate or a loop, but still has to be counted as done).
/// </summary>
internal readonly record struct MeshDelivery(object? Item, BusPeerState? Bus = null, int Epoch = 0, ulong Seq = 0);

/// <summary>
/// The node's one serial dispatcher: read loops, timers and API calls enqueue (never blocking, never under a subscriber),
/// one pump calls the subscribers in enqueue order, outside every library lock and off the read loops, so a slow
/// subscriber delays only the notifications behind it. The queue is bounded by back-pressure: a link's read loop that
/// finds it full (<see cref="IsFull"/>) waits for <see cref="WhenSpaceAsync"/> before reading on, as the client's
/// <c>EventDispatcher</c> does. Same pattern, its own type: the client's is bound to <c>Connection</c> and its acks.
/// </summary>
internal sealed class MeshDispatcher
{
    private readonly Channel<MeshDelivery> _queue = Channel.CreateUnbounded<MeshDelivery>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<MeshDelivery> _deliver;
    private readonly Action _end;
    private readonly ILogger _logger;
    private readonly int _capacity;
    private readonly Lock _gate = new();
    private readonly Task _pump;
    private TaskCompletionSource? _space;
    private int _count;

    /// <param name="capacity">How many deliveries may wait before <see cref="IsFull"/>.</param>
    /// <param name="deliver">Calls the subscribers (guarded: it should not throw; what escapes is logged).</param>
    /// <param name="end">Runs on the pump after the last delivery, once <see cref="Complete"/> was called: completes the streams.</param>
    /// <param name="logger">Where the library's own failures go.</param>
    public MeshDispatcher(int capacity, Action<MeshDelivery> deliver, Action end, ILogger logger)
    {
        _capacity = Math.Max(1, capacity);
        _deliver = deliver;
        _end = end;
        _logger = logger;
        _pump = PumpAsync();
    }

    /// <summary>Ends when <see cref="Complete"/> was called and everything queued before was delivered.</summary>
    public Task Completion => _pump;

    /// <summary>True when the queue holds its capacity or more: a link's read loop should wait before reading on.</summary>
    public bool IsFull => Volatile.Read(ref _count) >= _capacity;

    /// <summary>
    /// Queues one delivery (never blocks: the bound is kept by the read loops' wait on <see cref="WhenSpaceAsync"/>).
    /// False when the dispatcher was completed (the node closed): the delivery is dropped.
    /// </summary>
    public bool Enqueue(in MeshDelivery delivery)
    {
        Interlocked.Increment(ref _count); // before the write: the pump's decrement never sees it missing
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

            // Another read loop's wait is shared; one this method completed itself below is not reused (it would let
            // every later wait through while the queue is still full).
            var space = _space is { Task.IsCompleted: false } waiting ? waiting : new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _space, space); // a full fence: the pump's release either sees it or left room seen below
            if (!IsFull)
            {
                space.TrySetResult();
            }

            return space.Task;
        }
    }

    /// <summary>No more deliveries: the pump ends after those queued, runs the end action, and <see cref="Completion"/> completes.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    private async Task PumpAsync()
    {
        await Task.Yield(); // never run the first delivery on the constructor's thread
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var delivery))
            {
                try
                {
                    _deliver(delivery);
                }
                catch (Exception ex)
                {
                    // Subscribers are guarded; this is the library's own failure, which must not stop the pump.
                    _logger.LogError(ex, "Delivering a node's notification failed");
                }

                Released();
            }
        }

        try
        {
            _end();
        }
        catch (Exception ex)
        {
            _logger.LogError(ex, "Completing a node's streams failed");
        }
    }

    private void Released()
    {
        var left = Interlocked.Decrement(ref _count); // a full fence before reading _space (WhenSpaceAsync: the reverse)
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
