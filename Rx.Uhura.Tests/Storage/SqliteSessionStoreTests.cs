using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Data.Sqlite;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Sqlite;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Storage;

/// <summary>A temp folder of one test, deleted afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("rx-uhura-store-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still open elsewhere leaves the folder behind.
        }
    }
}

public sealed class SqliteSessionStoreContractTests : SessionStoreContractTests
{
    private readonly TempFolder _folder = new();

    protected override Task<ISessionStore> CreateStoreAsync(TimeProvider time, TimeSpan timeToLive)
        => Task.FromResult<ISessionStore>(new SqliteSessionStore(SqliteSessionStoreOptions.Default with
        {
            Path = _folder.File("sessions.db"),
            TimeProvider = time,
            TimeToLive = timeToLive,
        }));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _folder.Dispose();
    }
}

public sealed class SqliteSessionStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static Dictionary<string, JToken> Session(string key, JToken value) => new(StringComparer.Ordinal) { [key] = value };

    private static async Task<long> CountAsync(string path, string table)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM \"{table}\"";
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task Sessions_and_stream_states_survive_closing_and_reopening_the_file()
    {
        var path = _folder.File("restart.db");
        await using (var first = new SqliteSessionStore(path))
        {
            await first.SetAsync("s1", Session("k", "v"));
            await first.SaveStreamAsync("s1", new SessionStreamState(2, 1, [new HeldEvent(2, "[\"e\"]"u8.ToArray())], "w"));
        }

        await using var second = new SqliteSessionStore(path);
        Assert.Equal("v", (string?)(await second.GetAsync("s1"))!["k"]);
        var state = await second.TakeStreamAsync("s1");
        Assert.Equal(2, state!.LastSent);
        Assert.Equal("[\"e\"]"u8.ToArray(), state.Held.Single().Payload.ToArray());
    }

    [Fact]
    public async Task Two_stores_on_one_file_share_sessions_and_write_concurrently_without_busy_errors()
    {
        var path = _folder.File("shared.db");
        await using var a = new SqliteSessionStore(path);
        await using var b = new SqliteSessionStore(path);
        await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(async () =>
        {
            var (writer, reader) = i % 2 == 0 ? (a, b) : (b, a);
            await writer.SetAsync($"id{i}", Session("i", i));
            Assert.Equal(i, (await reader.GetAsync($"id{i}"))!["i"].Value<int>());
            await writer.SaveStreamAsync($"id{i}", new SessionStreamState(i, i, [], "w"));
        })));

        var taken = await Task.WhenAll(Enumerable.Range(0, 200).SelectMany(i => new[] { a, b }.Select(store => store.TakeStreamAsync($"id{i}").AsTask())));
        Assert.Equal(200, taken.Count(s => s is not null)); // each state taken by exactly one of the two
    }

    [Fact]
    public async Task The_file_is_in_WAL_mode_and_the_tables_carry_the_prefix()
    {
        var path = _folder.File("prefix.db");
        await using (var store = new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = path, TablePrefix = "app1_" }))
        {
            await store.SetAsync("x", Session("k", 1));
        }

        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string)(await command.ExecuteScalarAsync())!);
        Assert.Equal(1, await CountAsync(path, "app1_sessions"));
        Assert.Equal(0, await CountAsync(path, "app1_streams"));
    }

    [Fact]
    public async Task The_purge_timer_deletes_expired_rows_on_the_virtual_clock()
    {
        var scheduler = new TestScheduler();
        scheduler.AdvanceTo(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks);
        var path = _folder.File("purge.db");
        await using var store = new SqliteSessionStore(SqliteSessionStoreOptions.Default with
        {
            Path = path,
            TimeProvider = new SchedulerTimeProvider(scheduler),
            TimeToLive = TimeSpan.FromMinutes(10),
            PurgeInterval = TimeSpan.FromMinutes(1),
            PurgeBatchSize = 7, // several batches
        });
        for (var i = 0; i < 20; i++)
        {
            await store.SetAsync($"old{i}", Session("i", i));
            await store.SaveStreamAsync($"old{i}", new SessionStreamState(1, 1, [], "w"));
        }

        scheduler.AdvanceBy(TimeSpan.FromMinutes(5).Ticks);
        await store.SetAsync("young", Session("i", -1));
        scheduler.AdvanceBy(TimeSpan.FromMinutes(6).Ticks); // the old rows expired at 10 min; the timer fires at 11 min
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(10)).SelectMany(_ => CountAsync(path, "uhura_sessions")).Where(n => n == 1));
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(10)).SelectMany(_ => CountAsync(path, "uhura_streams")).Where(n => n == 0));
        Assert.NotNull(await store.GetAsync("young"));
        Assert.Equal(0, await store.PurgeAsync());
    }

    [Fact]
    public async Task Options_are_validated_when_the_store_is_built()
    {
        Assert.Throws<ArgumentException>(() => new SqliteSessionStore(SqliteSessionStoreOptions.Default));
        Assert.Throws<ArgumentException>(() => new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = "a.db", ConnectionString = "Data Source=a.db" }));
        Assert.Throws<ArgumentException>(() => new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = "a.db", TablePrefix = "x\"; DROP" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = "a.db", TimeToLive = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SqliteSessionStore(SqliteSessionStoreOptions.Default with { Path = "a.db", PurgeBatchSize = 0 }));

        var store = new SqliteSessionStore(_folder.File("disposed.db"));
        await store.DisposeAsync();
        await store.DisposeAsync(); // idempotent
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.GetAsync("x").AsTask());
    }

    [Fact]
    public async Task A_client_resumes_its_session_on_a_new_server_with_a_new_store_on_the_same_file()
    {
        var path = _folder.File("server.db");
        var socket = $"unix://{Path.Combine(Path.GetTempPath(), $"uhura-store-{Guid.NewGuid():N}.sock")}";
        var fast = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };
        UhuraClient client;
        string id;
        await using (var firstStore = new SqliteSessionStore(path))
        {
            var first = new UhuraServer(new UhuraServerOptions { SessionStore = firstStore });
            var connections = new ReplaySubject<Connection>();
            first.Connections.Subscribe(connections);
            await first.ListenAsync(socket);
            client = UhuraClient.Connect(socket, new UhuraClientOptions { Reconnect = fast });
            await client.WhenConnectedAsync().For();
            id = client.Session.Id!;
            client.Session.Set("user", new { name = "ada" });
            client.Session.Set("count", 3);
            await client.Send("sync").For(); // acknowledged after the _set messages before it were read
            var connection = await Wait.First(connections);
            connection.Session.Set("from-server", "s");
            await Wait.First(client.Session, s => s.ContainsKey("from-server"));
            await first.CloseAsync().For();
            await first.DisposeAsync();
        }

        await using (client)
        {
            await using var secondStore = new SqliteSessionStore(path);
            await using var second = new UhuraServer(new UhuraServerOptions { SessionStore = secondStore });
            var connections = new ReplaySubject<Connection>();
            second.Connections.Subscribe(connections);
            await second.ListenAsync(socket);

            var state = await Wait.First(client.State, s => s.Status == ConnectionStatus.Connected);
            Assert.True(state.Resumed);
            Assert.Equal(id, client.Session.Id);
            var resumed = await Wait.First(connections);
            Assert.True(resumed.Resumed);
            Assert.Equal("ada", (string?)resumed.Session.Get("user")!["name"]);
            Assert.Equal(3, resumed.Session.Get<int>("count"));
            Assert.Equal("s", resumed.Session.Get<string>("from-server"));

            // A client of another process that knows only the id gets the stored keys from the file.
            await client.DisposeAsync();
            await Wait.First(resumed.Disconnected);
            await using var stranger = await UhuraClient.ConnectAsync(socket, new UhuraClientOptions
            {
                InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = id },
            }).For();
            Assert.True(stranger.CurrentState.Resumed);
            Assert.Equal(id, stranger.Session.Id);
            Assert.Equal(3, stranger.Session.Get<int>("count"));
            Assert.Equal("s", stranger.Session.Get<string>("from-server"));
        }
    }
}
