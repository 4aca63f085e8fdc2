using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;

namespace Rx.Uhura.Tests.Storage;

/// <summary>
/// What every <see cref="ISessionStore"/> promises, run against each store. The resume-state tests run for a store
/// that implements <see cref="ISessionStreamStore"/>, and a durable store must (<see cref="KeepsStreams"/>); the expiry
/// tests run on a virtual clock for a store with a time to live (<see cref="Expires"/>).
/// </summary>
public abstract class SessionStoreContractTests : IAsyncLifetime
{
    /// <summary>The time to live the stores under test are given.</summary>
    protected static readonly TimeSpan TimeToLive = TimeSpan.FromMinutes(10);

    /// <summary>The virtual clock of the store under test (at a realistic date, not year 1).</summary>
    protected TestScheduler Scheduler { get; } = new();

    /// <summary>The store under test.</summary>
    protected ISessionStore Store { get; private set; } = null!;

    /// <summary>Whether the store must implement <see cref="ISessionStreamStore"/> (a durable store does).</summary>
    protected virtual bool KeepsStreams => true;

    /// <summary>Whether the store forgets a session <see cref="TimeToLive"/> after its last save.</summary>
    protected virtual bool Expires => true;

    /// <summary>Creates a store on <paramref name="time"/> with <paramref name="timeToLive"/> (a store without expiry ignores both).</summary>
    protected abstract Task<ISessionStore> CreateStoreAsync(TimeProvider time, TimeSpan timeToLive);

    public virtual async Task InitializeAsync()
    {
        Scheduler.AdvanceTo(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks);
        Store = await CreateStoreAsync(new SchedulerTimeProvider(Scheduler), TimeToLive);
    }

    public virtual async Task DisposeAsync()
    {
        if (Store is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }

    private static string NewId() => Guid.NewGuid().ToString("N");

    private static Dictionary<string, JToken> Session(params (string Key, JToken Value)[] values)
        => values.ToDictionary(v => v.Key, v => v.Value, StringComparer.Ordinal);

    private static void AssertSame(IReadOnlyDictionary<string, JToken> expected, IReadOnlyDictionary<string, JToken>? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in expected)
        {
            Assert.True(JToken.DeepEquals(value, actual[key]), $"{key}: expected {value.ToString(Newtonsoft.Json.Formatting.None)}, got {actual[key].ToString(Newtonsoft.Json.Formatting.None)}");
            Assert.Equal(value.Type, actual[key].Type);
        }
    }

    private ISessionStreamStore? Streams()
    {
        if (KeepsStreams)
        {
            return Assert.IsAssignableFrom<ISessionStreamStore>(Store);
        }

        return Store as ISessionStreamStore;
    }

    private static SessionStreamState StreamState(long lastSent, string writer, params (long Seq, string Json)[] held)
        => new(lastSent, lastSent / 2, [.. held.Select(h => new HeldEvent(h.Seq, System.Text.Encoding.UTF8.GetBytes(h.Json)))], writer);

    private static void AssertSame(SessionStreamState expected, SessionStreamState? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.LastSent, actual.LastSent);
        Assert.Equal(expected.LastReceived, actual.LastReceived);
        Assert.Equal(expected.Writer, actual.Writer);
        Assert.Equal(expected.Held.Select(h => h.Seq), actual.Held.Select(h => h.Seq));
        Assert.Equal(expected.Held.Select(h => h.Payload.ToArray()), actual.Held.Select(h => h.Payload.ToArray()));
    }

    [Fact]
    public async Task An_unknown_id_gives_null()
    {
        Assert.Null(await Store.GetAsync(NewId()));
    }

    [Fact]
    public async Task A_saved_session_comes_back_with_every_json_type_intact()
    {
        var id = NewId();
        var session = Session(
            (UhuraSession.IdKey, id),
            ("text", "hello"),
            ("looks-like-a-date", "2020-01-02T03:04:05Z"),
            ("int", 42),
            ("big", long.MaxValue),
            ("float", 1.5),
            ("true", true),
            ("null", JValue.CreateNull()),
            ("empty", ""),
            ("object", JObject.Parse("""{"name":"ada","tags":["a","b"],"nested":{"deep":[1,{"x":null}]}}""")),
            ("array", new JArray(1, "two", 3.25, false)));
        await Store.SetAsync(id, session);
        AssertSame(session, await Store.GetAsync(id));
    }

    [Fact]
    public async Task Saving_again_replaces_the_whole_session()
    {
        var id = NewId();
        await Store.SetAsync(id, Session(("a", 1), ("b", 2)));
        var second = Session(("b", 3), ("c", "new"));
        await Store.SetAsync(id, second);
        AssertSame(second, await Store.GetAsync(id));
    }

    [Fact]
    public async Task Destroy_forgets_the_session_and_an_unknown_id_is_no_error()
    {
        var id = NewId();
        await Store.SetAsync(id, Session(("a", 1)));
        await Store.DestroyAsync(id);
        Assert.Null(await Store.GetAsync(id));
        await Store.DestroyAsync(id);
        await Store.DestroyAsync(NewId());
    }

    [Fact]
    public async Task Concurrent_calls_for_different_ids_do_not_interfere()
    {
        var ids = Enumerable.Range(0, 64).Select(_ => NewId()).ToArray();
        await Task.WhenAll(ids.Select((id, i) => Task.Run(async () =>
        {
            for (var round = 0; round < 5; round++)
            {
                await Store.SetAsync(id, Session(("i", i), ("round", round)));
                var back = await Store.GetAsync(id);
                Assert.Equal(i, back!["i"].Value<int>());
                Assert.Equal(round, back["round"].Value<int>());
            }

            if (i % 2 == 1)
            {
                await Store.DestroyAsync(id);
            }
        })));

        for (var i = 0; i < ids.Length; i++)
        {
            var back = await Store.GetAsync(ids[i]);
            if (i % 2 == 1)
            {
                Assert.Null(back);
            }
            else
            {
                AssertSame(Session(("i", i), ("round", 4)), back);
            }
        }
    }

    [Fact]
    public async Task Unicode_keys_and_values_round_trip()
    {
        var id = NewId();
        var session = Session(
            ("ключ", "значение"),
            ("鍵🔑", "値 🎉 e\u0301 \u200f\u05e9\u05dc\u05d5\u05dd"),
            ("quote\"back\\slash\nnewline\ttab", "'; DROP TABLE sessions; --"),
            ("emoji", new JArray("👩‍💻", "🇫🇷")));
        await Store.SetAsync(id, session);
        AssertSame(session, await Store.GetAsync(id));
    }

    [Fact]
    public async Task A_large_session_round_trips()
    {
        var id = NewId();
        var session = Session(
            ("blob", new string('x', 1024 * 1024)),
            ("many", new JArray(Enumerable.Range(0, 20_000))));
        for (var i = 0; i < 500; i++)
        {
            session[$"key{i}"] = new JObject { ["i"] = i, ["s"] = new string('é', 100) };
        }

        await Store.SetAsync(id, session);
        AssertSame(session, await Store.GetAsync(id));
    }

    [Fact]
    public async Task A_saved_stream_state_is_taken_once_with_its_held_events_in_order()
    {
        if (Streams() is not { } streams)
        {
            return;
        }

        var id = NewId();
        Assert.Null(await streams.TakeStreamAsync(id));
        var state = StreamState(7, "server-a:1", (5, """["a",1]"""), (6, """["b","ü"]"""), (7, """["c",{"x":[1,2]}]"""), (0, """["queued"]"""));
        await streams.SaveStreamAsync(id, state);
        AssertSame(state, await streams.TakeStreamAsync(id));
        Assert.Null(await streams.TakeStreamAsync(id));
    }

    [Fact]
    public async Task Saving_a_stream_state_replaces_the_one_before_and_an_empty_one_round_trips()
    {
        if (Streams() is not { } streams)
        {
            return;
        }

        var id = NewId();
        await streams.SaveStreamAsync(id, StreamState(3, "w1", (1, "[\"a\"]"), (2, "[\"b\"]"), (3, "[\"c\"]")));
        var second = StreamState(9, "w2");
        await streams.SaveStreamAsync(id, second);
        AssertSame(second, await streams.TakeStreamAsync(id));
    }

    [Fact]
    public async Task A_large_held_list_round_trips()
    {
        if (Streams() is not { } streams)
        {
            return;
        }

        var id = NewId();
        var held = Enumerable.Range(1, 5_000).Select(i => (Seq: (long)i, Json: $"[\"e\",{i},\"{new string('p', i % 300)}\"]")).ToArray();
        var state = StreamState(5_000, "big", held);
        await streams.SaveStreamAsync(id, state);
        AssertSame(state, await streams.TakeStreamAsync(id));
    }

    [Fact]
    public async Task Destroy_removes_the_stream_state_with_the_session()
    {
        if (Streams() is not { } streams)
        {
            return;
        }

        var id = NewId();
        await Store.SetAsync(id, Session(("a", 1)));
        await streams.SaveStreamAsync(id, StreamState(1, "w", (1, "[\"a\"]")));
        var other = NewId();
        await streams.SaveStreamAsync(other, StreamState(2, "w", (2, "[\"b\"]")));
        await Store.DestroyAsync(id);
        Assert.Null(await Store.GetAsync(id));
        Assert.Null(await streams.TakeStreamAsync(id));
        Assert.NotNull(await streams.TakeStreamAsync(other));
    }

    [Fact]
    public async Task Stream_states_of_different_ids_are_taken_independently_under_concurrency()
    {
        if (Streams() is not { } streams)
        {
            return;
        }

        var ids = Enumerable.Range(0, 32).Select(_ => NewId()).ToArray();
        await Task.WhenAll(ids.Select((id, i) => Task.Run(async () =>
        {
            var state = StreamState(i, id, (i, $"[{i}]"));
            await streams.SaveStreamAsync(id, state);
            AssertSame(state, await streams.TakeStreamAsync(id));
        })));
    }

    [Fact]
    public async Task A_session_expires_its_time_to_live_after_the_last_save_on_the_virtual_clock()
    {
        if (!Expires)
        {
            return;
        }

        var id = NewId();
        var session = Session(("k", "v"));
        await Store.SetAsync(id, session);
        Scheduler.AdvanceBy((TimeToLive - TimeSpan.FromSeconds(1)).Ticks);
        AssertSame(session, await Store.GetAsync(id));
        Scheduler.AdvanceBy(TimeSpan.FromSeconds(1).Ticks);
        Assert.Null(await Store.GetAsync(id));
    }

    [Fact]
    public async Task Saving_refreshes_the_time_to_live_and_reading_does_not()
    {
        if (!Expires)
        {
            return;
        }

        var id = NewId();
        await Store.SetAsync(id, Session(("k", 1)));
        Scheduler.AdvanceBy((TimeToLive * 0.75).Ticks);
        await Store.SetAsync(id, Session(("k", 2)));
        Scheduler.AdvanceBy((TimeToLive * 0.75).Ticks);
        Assert.Equal(2, (await Store.GetAsync(id))!["k"].Value<int>()); // 1.5 TTL after the first save, 0.75 after the last
        Scheduler.AdvanceBy((TimeToLive * 0.25).Ticks);
        Assert.Null(await Store.GetAsync(id));

        // An expired session saved again is a live one.
        await Store.SetAsync(id, Session(("k", 3)));
        Assert.Equal(3, (await Store.GetAsync(id))!["k"].Value<int>());
    }

    [Fact]
    public async Task A_stream_state_expires_its_time_to_live_after_its_save()
    {
        if (!Expires || Streams() is not { } streams)
        {
            return;
        }

        var kept = NewId();
        var expired = NewId();
        await streams.SaveStreamAsync(expired, StreamState(1, "w", (1, "[1]")));
        Scheduler.AdvanceBy((TimeToLive / 2).Ticks);
        await streams.SaveStreamAsync(kept, StreamState(2, "w", (2, "[2]")));
        Scheduler.AdvanceBy((TimeToLive / 2).Ticks);
        Assert.Null(await streams.TakeStreamAsync(expired));
        Assert.NotNull(await streams.TakeStreamAsync(kept));
    }
}

/// <summary>The contract on the default store (no expiry; resume state only once it implements <see cref="ISessionStreamStore"/>).</summary>
public sealed class InMemorySessionStoreContractTests : SessionStoreContractTests
{
    protected override bool KeepsStreams => false;

    protected override bool Expires => false;

    protected override Task<ISessionStore> CreateStoreAsync(TimeProvider time, TimeSpan timeToLive) => Task.FromResult<ISessionStore>(new InMemorySessionStore());
}
