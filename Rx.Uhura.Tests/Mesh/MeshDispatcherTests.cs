using Microsoft.Extensions.Logging.Abstractions;
using Rx.Uhura.Mesh.Internal;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Mesh;

/// <summary>The node's serial dispatcher alone: order, the bound read loops wait on, and the end after what was queued.</summary>
public class MeshDispatcherTests
{
    [Fact]
    public async Task Deliveries_come_out_one_at_a_time_in_order_and_the_end_runs_after_the_last()
    {
        var seen = new List<object?>();
        var concurrent = 0;
        var overlapped = false;
        var ended = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var dispatcher = new MeshDispatcher(
            4,
            d =>
            {
                overlapped |= Interlocked.Increment(ref concurrent) > 1;
                seen.Add(d.Item);
                Interlocked.Decrement(ref concurrent);
            },
            () => ended.TrySetResult(seen.Count),
            NullLogger.Instance);

        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < 250; i++)
            {
                Assert.True(dispatcher.Enqueue(new MeshDelivery((p, i))));
            }
        })).ToArray();
        await Task.WhenAll(producers).For();
        dispatcher.Complete();
        Assert.False(dispatcher.Enqueue(new MeshDelivery("late")));

        Assert.Equal(1000, await ended.Task.For());
        await dispatcher.Completion.For();
        Assert.False(overlapped);
        for (var p = 0; p < 4; p++)
        {
            Assert.Equal(Enumerable.Range(0, 250), seen.Cast<(int P, int I)>().Where(x => x.P == p).Select(x => x.I));
        }
    }

    [Fact]
    public async Task A_full_queue_makes_its_waiters_wait_until_a_delivery_makes_room()
    {
        using var release = new SemaphoreSlim(0);
        var dispatcher = new MeshDispatcher(2, _ => release.Wait(Wait.Timeout), () => { }, NullLogger.Instance);
        for (var i = 0; i < 3; i++)
        {
            dispatcher.Enqueue(new MeshDelivery(i)); // the first is taken by the pump, which blocks in it
        }

        Assert.True(dispatcher.IsFull);
        var first = dispatcher.WhenSpaceAsync();
        var second = dispatcher.WhenSpaceAsync();
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);

        release.Release(); // one delivered: two left, still full (capacity 2)
        release.Release(); // two delivered: one left, room
        await first.For();
        await second.For();
        Assert.False(dispatcher.IsFull);
        Assert.True(dispatcher.WhenSpaceAsync().IsCompleted);

        release.Release();
        dispatcher.Complete();
        await dispatcher.Completion.For();
    }
}
