using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Storage;

/// <summary>The in-memory store's time to live and its resume states, in virtual time.</summary>
public class InMemorySessionStoreTests
{
    private static readonly Dictionary<string, JToken> Keys = new() { ["user"] = "ada" };

    private static SessionStreamState State(string writer) => new(3, 2, [new HeldEvent(3, "[\"news\",1]"u8.ToArray())], writer);

    [Fact]
    public async Task A_session_lives_its_time_to_live_after_its_last_save()
    {
        var scheduler = new TestScheduler();
        var store = new InMemorySessionStore(TimeSpan.FromMinutes(10), new SchedulerTimeProvider(scheduler));
        await store.SetAsync("s1", Keys);
        scheduler.AdvanceBy(TimeSpan.FromMinutes(9).Ticks);
        Assert.NotNull(await store.GetAsync("s1"));
        await store.SetAsync("s1", Keys); // saved again: ten more minutes
        scheduler.AdvanceBy(TimeSpan.FromMinutes(9).Ticks);
        Assert.NotNull(await store.GetAsync("s1"));
        Assert.Equal(1, store.Count);
        scheduler.AdvanceBy(TimeSpan.FromMinutes(1).Ticks);
        Assert.Null(await store.GetAsync("s1"));
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public async Task Without_a_time_to_live_a_session_stays_until_destroyed()
    {
        var scheduler = new TestScheduler();
        var store = new InMemorySessionStore(null, new SchedulerTimeProvider(scheduler));
        await store.SetAsync("s1", Keys);
        await store.SaveStreamAsync("s1", State("w"));
        scheduler.AdvanceBy(TimeSpan.FromDays(365).Ticks);
        Assert.Equal("ada", (string?)(await store.GetAsync("s1"))!["user"]);
        await store.DestroyAsync("s1");
        Assert.Null(await store.GetAsync("s1"));
        Assert.Null(await store.TakeStreamAsync("s1"));
    }

    [Fact]
    public async Task A_resume_state_is_taken_once_and_expires_like_sessions()
    {
        var scheduler = new TestScheduler();
        var store = new InMemorySessionStore(TimeSpan.FromMinutes(10), new SchedulerTimeProvider(scheduler));
        await store.SaveStreamAsync("s1", State("first"));
        await store.SaveStreamAsync("s1", State("second")); // replaces
        var taken = await store.TakeStreamAsync("s1");
        Assert.Equal("second", taken!.Writer);
        Assert.Equal(3, taken.Held[0].Seq);
        Assert.Null(await store.TakeStreamAsync("s1"));

        await store.SaveStreamAsync("s2", State("w"));
        scheduler.AdvanceBy(TimeSpan.FromMinutes(10).Ticks);
        Assert.Null(await store.TakeStreamAsync("s2"));
    }

    [Fact]
    public void A_time_to_live_must_be_positive()
        => Assert.Throws<ArgumentOutOfRangeException>(() => new InMemorySessionStore(TimeSpan.Zero));
}
