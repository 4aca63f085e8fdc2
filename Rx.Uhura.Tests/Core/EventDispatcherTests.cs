using System.Reactive.Linq;
using Microsoft.Extensions.Logging.Abstractions;
using Rx.Uhura.Internal;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// The serial dispatcher's own rules, below its targets (links, and the mesh node): one delivery at a time in each
/// producer's order, the end after what was queued, the bound producers wait on, acknowledgements flushed in runs, and
/// completion waiting for an open read batch without a pump that spins.
/// </summary>
public sealed class EventDispatcherTests
{
    [Fact]
    public async Task Completion_waits_for_an_open_read_batch_without_spinning_and_follows_its_end()
    {
        var dispatcher = new EventDispatcher(16, NullLogger.Instance);
        Assert.True(dispatcher.EnterBatch()); // a read loop in a batch (it may await inside it)
        dispatcher.Complete();
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(1)).Where(_ => dispatcher.IdleChecks >= 1)); // the pump ran, found nothing, and a writer still in

        // Time passes while the batch stays open (a store call, say). A pump that waited for the writer by looping would
        // count its checks by the thousand meanwhile.
        for (var i = 0; i < 20; i++)
        {
            await Task.Run(static () => { });
        }

        Assert.Equal(1, dispatcher.IdleChecks);
        Assert.False(dispatcher.Completion.IsCompleted); // not before the batch ends: it may still queue
        Assert.False(dispatcher.EnterBatch()); // a batch begun after Complete queues nothing

        dispatcher.ExitBatch();
        await dispatcher.Completion.For();
    }

    [Fact]
    public async Task Deliveries_come_out_one_at_a_time_in_each_producers_order_and_the_end_after_the_last()
    {
        var target = new Target();
        var dispatcher = new EventDispatcher(4, NullLogger.Instance);
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < 250; i++)
            {
                Assert.True(dispatcher.Enqueue(Delivery.Of(target, (p, i))));
            }
        })).ToArray();
        await Task.WhenAll(producers).For();
        Assert.True(dispatcher.Enqueue(Delivery.Completion(target)));
        dispatcher.Complete();
        Assert.False(dispatcher.Enqueue(Delivery.Of(target, "late")));

        await dispatcher.Completion.For();
        Assert.False(target.Overlapped);
        Assert.Equal(1001, target.Seen.Count);
        Assert.Equal("end", target.Seen[^1]);
        for (var p = 0; p < 4; p++)
        {
            Assert.Equal(Enumerable.Range(0, 250), target.Seen.OfType<(int P, int I)>().Where(x => x.P == p).Select(x => x.I));
        }
    }

    [Fact]
    public async Task A_full_queue_makes_its_waiters_wait_until_deliveries_make_room()
    {
        using var release = new SemaphoreSlim(0);
        var target = new Target(release);
        var dispatcher = new EventDispatcher(2, NullLogger.Instance);
        for (var i = 0; i < 3; i++)
        {
            dispatcher.Enqueue(Delivery.Of(target, i)); // the first is taken by the pump, which blocks in it
        }

        Assert.True(dispatcher.IsFull);
        var first = dispatcher.WhenSpaceAsync();
        var second = dispatcher.WhenSpaceAsync();
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);

        release.Release(3);
        await first.For();
        await second.For();
        Assert.False(dispatcher.IsFull);
        Assert.True(dispatcher.WhenSpaceAsync().IsCompleted);
        dispatcher.Complete();
        await dispatcher.Completion.For();
    }

    [Fact]
    public async Task Acknowledgements_are_flushed_when_the_target_changes_and_before_a_barrier_completes()
    {
        var a = new Target();
        var b = new Target();
        var dispatcher = new EventDispatcher(16, NullLogger.Instance);
        Assert.True(dispatcher.EnterBatch()); // queued together: the pump sees them in one run
        dispatcher.EnqueueInBatch(Delivery.Of(a, "a1", ackSeq: 1));
        dispatcher.EnqueueInBatch(Delivery.Of(a, "a2", ackSeq: 2));
        dispatcher.EnqueueInBatch(Delivery.Of(b, "b1", ackSeq: 1));
        dispatcher.Publish(3);
        dispatcher.ExitBatch();
        await dispatcher.WhenDeliveredAsync(b).For();

        Assert.Equal([2], a.FlushedAfter); // once for both of a's, when b's came
        Assert.Equal([1], b.FlushedAfter); // before the barrier completed
        dispatcher.Complete();
        await dispatcher.Completion.For();
    }

    /// <summary>Records what it is given, whether two calls overlapped, and how many deliveries each flush followed.</summary>
    private sealed class Target(SemaphoreSlim? gate = null) : IDispatchTarget
    {
        private int _inside;
        private int _sinceFlush;

        public List<object?> Seen { get; } = [];

        public List<int> FlushedAfter { get; } = [];

        public bool Overlapped { get; private set; }

        public ValueTask DispatchAsync(Delivery delivery)
        {
            Overlapped |= Interlocked.Increment(ref _inside) > 1;
            gate?.Wait(Wait.Timeout);
            Seen.Add(delivery.IsCompletion ? "end" : delivery.Item);
            _sinceFlush += delivery.OwesAck ? 1 : 0;
            Interlocked.Decrement(ref _inside);
            return ValueTask.CompletedTask;
        }

        public void FlushAcks()
        {
            FlushedAfter.Add(_sinceFlush);
            _sinceFlush = 0;
        }
    }
}
