using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Rx.Uhura.Internal;

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
/// finds it full (<see cref="IsFull"/>) waits for <see cref="WhenSpaceAsync"/> before reading on: the same
/// <see cref="DeliveryRoom"/> as the links' <see cref="EventDispatcher"/>, whose pump is bound to <c>Connection</c> and its acks.
/// </summary>
internal sealed class MeshDispatcher
{
    private readonly Channel<MeshDelivery> _queue = Channel.CreateUnbounded<MeshDelivery>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Action<MeshDelivery> _deliver;
    private readonly Action _end;
    private readonly ILogger _logger;
    private readonly DeliveryRoom _room;
    private readonly Task _pump;

    /// <param name="capacity">How many deliveries may wait before <see cref="IsFull"/>.</param>
    /// <param name="deliver">Calls the subscribers (guarded: it should not throw; what escapes is logged).</param>
    /// <param name="end">Runs on the pump after the last delivery, once <see cref="Complete"/> was called: completes the streams.</param>
    /// <param name="logger">Where the library's own failures go.</param>
    public MeshDispatcher(int capacity, Action<MeshDelivery> deliver, Action end, ILogger logger)
    {
        _room = new DeliveryRoom(capacity);
        _deliver = deliver;
        _end = end;
        _logger = logger;
        _pump = PumpAsync();
    }

    /// <summary>Ends when <see cref="Complete"/> was called and everything queued before was delivered.</summary>
    public Task Completion => _pump;

    /// <summary>True when the queue holds its capacity or more: a link's read loop should wait before reading on.</summary>
    public bool IsFull => _room.IsFull;

    /// <summary>
    /// Queues one delivery (never blocks: the bound is kept by the read loops' wait on <see cref="WhenSpaceAsync"/>).
    /// False when the dispatcher was completed (the node closed): the delivery is dropped.
    /// </summary>
    public bool Enqueue(in MeshDelivery delivery)
    {
        _room.Add(1); // before the write: the pump's release never finds it missing
        if (_queue.Writer.TryWrite(delivery))
        {
            return true;
        }

        _room.Release(1);
        return false;
    }

    /// <summary>Completes once the queue has room again (below its capacity).</summary>
    public Task WhenSpaceAsync() => _room.WhenSpaceAsync();

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

                _room.Release(1);
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
}
