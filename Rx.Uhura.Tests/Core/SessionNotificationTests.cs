using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Core;

/// <summary>
/// How a session tells its subscribers: outside every lock, each subscriber from a queue of its own, in the order the
/// changes were applied; the current contents replayed at once on subscription; completion after what was queued.
/// </summary>
public class SessionNotificationTests
{
    private static UhuraSession NewSession(Action<SubscriberException>? errors = null) =>
        new(JsonSerializer.CreateDefault()) { ErrorSink = errors };

    [Fact]
    public void Subscribing_replays_the_current_contents_before_Subscribe_returns()
    {
        var session = NewSession();
        session.Set("a", 1);
        IReadOnlyDictionary<string, JToken>? seen = null;
        using var _ = session.Subscribe(contents => seen = contents);

        Assert.NotNull(seen);
        Assert.Equal(1, (int)seen!["a"]);
    }

    [Fact]
    public async Task Changes_from_many_threads_reach_a_subscriber_all_and_in_each_threads_order()
    {
        var session = NewSession();
        const int perThread = 2_000;
        var seen = new List<(string Key, int Value)>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var _ = session.Changes.Subscribe(change =>
        {
            seen.Add((change.Key, (int)change.Value!)); // one call at a time: no lock needed here
            if (seen.Count == 4 * perThread)
            {
                all.TrySetResult();
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < perThread; i++)
            {
                session.Set($"t{t}", i);
            }
        })));
        await all.Task.For();

        for (var t = 0; t < 4; t++)
        {
            Assert.Equal(Enumerable.Range(0, perThread), seen.Where(s => s.Key == $"t{t}").Select(s => s.Value));
        }

        var last = await session.FirstAsync().ToTask().For();
        Assert.All(Enumerable.Range(0, 4), t => Assert.Equal(perThread - 1, (int)last[$"t{t}"]));
    }

    [Fact]
    public async Task A_subscriber_that_sets_a_key_hears_of_it_after_it_returns_without_deadlock()
    {
        var session = NewSession();
        var order = new List<string>();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var _ = session.Changes.Subscribe(change =>
        {
            order.Add($"{change.Key} in");
            if (change.Key == "ping")
            {
                session.Set("pong", 1);
            }
            else
            {
                done.TrySetResult();
            }

            order.Add($"{change.Key} out");
        });

        session.Set("ping", 1);
        await done.Task.For();
        Assert.Equal(["ping in", "ping out", "pong in", "pong out"], order);
    }

    [Fact]
    public async Task Completion_comes_after_what_was_queued_and_a_late_subscriber_only_completes()
    {
        var session = NewSession();
        using var gate = new ManualResetEventSlim();
        var seen = new List<string>();
        var completed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var _ = session.Changes.Subscribe(change => { gate.Wait(Wait.Timeout); seen.Add(change.Key); }, () => completed.TrySetResult());
        session.Set("a", 1);
        session.Set("b", 2);
        session.Complete();
        gate.Set();
        await completed.Task.For();
        Assert.Equal(["a", "b"], seen);

        var late = await session.Materialize().ToList().ToTask().For();
        Assert.Single(late);
        Assert.Equal(System.Reactive.NotificationKind.OnCompleted, late[0].Kind);
    }

    [Fact]
    public async Task A_changes_subscriber_that_falls_too_far_behind_is_reported_and_the_others_get_everything()
    {
        var errors = new List<SubscriberException>();
        var reported = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var session = NewSession(e =>
        {
            lock (errors)
            {
                errors.Add(e);
            }

            reported.TrySetResult();
        });
        var total = UhuraSession.MaxPendingChanges + 500;

        // The blocked subscriber below holds a thread-pool thread (as an application's would); the other subscriber's
        // queue is drained on another. Under a loaded parallel test run the pool may have no spare thread and add one
        // only every half second, which made this test time out once in about a dozen CI runs: make sure it has some.
        ThreadPool.GetMinThreads(out var workers, out var completions);
        ThreadPool.SetMinThreads(Math.Max(workers, 8), completions);
        using var gate = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slowDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fastDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = new List<int>();
        var fast = 0;
        using var blocked = session.Changes.Subscribe(change =>
        {
            entered.TrySetResult();
            gate.Wait(Wait.Timeout);
            slow.Add((int)change.Value!);
            if (slow.Count == 1 + UhuraSession.MaxPendingChanges || change.Key == "after")
            {
                slowDone.TrySetResult();
            }
        });
        using var other = session.Changes.Subscribe(_ =>
        {
            if (++fast == 1 + total)
            {
                fastDone.TrySetResult();
            }
        });

        session.Set("k", -1);
        await entered.Task.For();
        for (var i = 0; i < total; i++)
        {
            session.Set("k", i);
        }

        await fastDone.Task.For(); // the other subscriber got every change while the first one blocked
        gate.Set();
        await slowDone.Task.For();
        await reported.Task.For();
        Assert.Equal(Enumerable.Range(-1, 1 + UhuraSession.MaxPendingChanges), slow); // the oldest ones, in order; newer ones dropped for it
        lock (errors)
        {
            var error = Assert.Single(errors); // reported once for the whole episode
            Assert.IsType<SubscriberOverflowException>(error.InnerException);
        }

        slowDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        session.Set("after", 7); // caught up: it hears of new changes again
        await slowDone.Task.For();
        Assert.Equal(7, slow[^1]);
    }
}
