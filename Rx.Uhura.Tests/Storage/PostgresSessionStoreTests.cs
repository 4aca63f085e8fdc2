using System.Reactive.Linq;
using System.Reactive.Subjects;
using Microsoft.Reactive.Testing;
using Newtonsoft.Json.Linq;
using Npgsql;
using Rx.Uhura.PostgreSql;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Storage;

public sealed class PostgresSessionStoreContractTests : SessionStoreContractTests
{
    protected override async Task<ISessionStore> CreateStoreAsync(TimeProvider time, TimeSpan timeToLive)
    {
        var server = await PostgresServer.SharedAsync();
        return new PostgresSessionStore(PostgresSessionStoreOptions.Default with
        {
            ConnectionString = await server.CreateDatabaseAsync(),
            TimeProvider = time,
            TimeToLive = timeToLive,
        });
    }
}

/// <summary>Against the test run's real PostgreSQL 15, one fresh database per test.</summary>
public sealed class PostgresSessionStoreTests
{
    private static Dictionary<string, JToken> Session(string key, JToken value) => new(StringComparer.Ordinal) { [key] = value };

    private static async Task<string> DatabaseAsync() => await (await PostgresServer.SharedAsync()).CreateDatabaseAsync();

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Many_stores_starting_at_once_on_an_empty_database_create_the_schema_once_without_errors()
    {
        var database = await DatabaseAsync();
        var stores = Enumerable.Range(0, 12).Select(_ => new PostgresSessionStore(database)).ToArray();
        try
        {
            await Task.WhenAll(stores.Select((store, i) => Task.Run(async () => await store.SetAsync($"s{i}", Session("i", i)))));
            for (var i = 0; i < stores.Length; i++)
            {
                Assert.Equal(i, (await stores[(i + 1) % stores.Length].GetAsync($"s{i}"))!["i"].Value<int>());
            }

            Assert.Equal(2, await ScalarAsync(database, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'uhura\\_%'"));
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Of_several_servers_taking_one_stream_state_at_once_exactly_one_gets_it()
    {
        var database = await DatabaseAsync();
        var stores = Enumerable.Range(0, 8).Select(_ => new PostgresSessionStore(database)).ToArray();
        try
        {
            for (var round = 0; round < 10; round++)
            {
                var id = $"contended{round}";
                await stores[0].SaveStreamAsync(id, new SessionStreamState(round, 0, [new HeldEvent(round, "[\"x\"]"u8.ToArray())], "w"));
                var taken = await Task.WhenAll(stores.Select(store => Task.Run(async () => await store.TakeStreamAsync(id))));
                Assert.Equal(round, Assert.Single(taken, s => s is not null)!.LastSent);
            }
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_schema_option_puts_the_tables_there_and_the_data_as_jsonb_and_bytea()
    {
        var database = await DatabaseAsync();
        await using (var store = new PostgresSessionStore(PostgresSessionStoreOptions.Default with { ConnectionString = database, Schema = "uhura_test", TablePrefix = "p_" }))
        {
            await store.SetAsync("x", Session("k", new JObject { ["n"] = 1 }));
            await store.SaveStreamAsync("x", new SessionStreamState(1, 1, [new HeldEvent(1, new byte[] { 0, 1, 2, 255 })], "w"));
        }

        Assert.Equal(1, await ScalarAsync(database, "SELECT (data->'k'->>'n')::bigint FROM uhura_test.p_sessions WHERE id = 'x'"));
        Assert.Equal(4, await ScalarAsync(database, "SELECT length(held_payloads[1]) FROM uhura_test.p_streams WHERE session_id = 'x'"));
        Assert.Equal(0, await ScalarAsync(database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE '%sessions'"));
    }

    [Fact]
    public async Task A_shared_data_source_is_used_and_left_open()
    {
        var database = await DatabaseAsync();
        await using var dataSource = NpgsqlDataSource.Create(database);
        await using (var store = new PostgresSessionStore(PostgresSessionStoreOptions.Default with { DataSource = dataSource }))
        {
            await store.SetAsync("x", Session("k", 1));
        }

        await using var command = dataSource.CreateCommand("SELECT count(*) FROM uhura_sessions");
        Assert.Equal(1L, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_purge_timer_deletes_expired_rows_on_the_virtual_clock()
    {
        var scheduler = new TestScheduler();
        scheduler.AdvanceTo(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).UtcTicks);
        var database = await DatabaseAsync();
        await using var store = new PostgresSessionStore(PostgresSessionStoreOptions.Default with
        {
            ConnectionString = database,
            TimeProvider = new SchedulerTimeProvider(scheduler),
            TimeToLive = TimeSpan.FromMinutes(10),
            PurgeInterval = TimeSpan.FromMinutes(1),
            PurgeBatchSize = 7,
        });
        for (var i = 0; i < 20; i++)
        {
            await store.SetAsync($"old{i}", Session("i", i));
            await store.SaveStreamAsync($"old{i}", new SessionStreamState(1, 1, [], "w"));
        }

        scheduler.AdvanceBy(TimeSpan.FromMinutes(5).Ticks);
        await store.SetAsync("young", Session("i", -1));
        scheduler.AdvanceBy(TimeSpan.FromMinutes(6).Ticks);
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(10)).SelectMany(_ => ScalarAsync(database, "SELECT count(*) FROM uhura_sessions")).Where(n => n == 1));
        await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(10)).SelectMany(_ => ScalarAsync(database, "SELECT count(*) FROM uhura_streams")).Where(n => n == 0));
        Assert.NotNull(await store.GetAsync("young"));
        Assert.Equal(0, await store.PurgeAsync());
    }

    [Fact]
    public void Options_are_validated_when_the_store_is_built()
    {
        Assert.Throws<ArgumentException>(() => new PostgresSessionStore(PostgresSessionStoreOptions.Default));
        Assert.Throws<ArgumentException>(() => new PostgresSessionStore(PostgresSessionStoreOptions.Default with { ConnectionString = "Host=x", Schema = "bad schema" }));
        Assert.Throws<ArgumentException>(() => new PostgresSessionStore(PostgresSessionStoreOptions.Default with { ConnectionString = "Host=x", TablePrefix = "1x" }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PostgresSessionStore(PostgresSessionStoreOptions.Default with { ConnectionString = "Host=x", TimeToLive = TimeSpan.FromSeconds(-1) }));
    }

    [Fact]
    public async Task A_client_resumes_on_server_B_the_session_it_made_on_server_A()
    {
        var database = await DatabaseAsync();
        await using var storeA = new PostgresSessionStore(database);
        await using var storeB = new PostgresSessionStore(database);
        await using var serverA = new UhuraServer(new UhuraServerOptions { SessionStore = storeA });
        await using var serverB = new UhuraServer(new UhuraServerOptions { SessionStore = storeB });
        var connectionsA = new ReplaySubject<Connection>();
        var connectionsB = new ReplaySubject<Connection>();
        serverA.Connections.Subscribe(connectionsA);
        serverB.Connections.Subscribe(connectionsB);
        await serverA.ListenAsync("tcp://127.0.0.1:0");
        await serverB.ListenAsync("tcp://127.0.0.1:0");

        string id;
        await using (var first = await UhuraClient.ConnectAsync(serverA.Uri!).For())
        {
            id = first.Session.Id!;
            first.Session.Set("user", new { name = "ada" });
            first.Session.Set("cart", new[] { 1, 2, 3 });
            await first.Send("sync").For();
            var onA = await Wait.First(connectionsA);
            onA.Session.Set("server", "A");
            await Wait.First(first.Session, s => s.ContainsKey("server"));
            await onA.Session.FlushAsync().For();
            await first.Disconnect().For();
        }

        await using var second = await UhuraClient.ConnectAsync(serverB.Uri!, new UhuraClientOptions
        {
            InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = id },
        }).For();
        Assert.True(second.CurrentState.Resumed);
        Assert.Equal(id, second.Session.Id);
        Assert.Equal("ada", (string?)second.Session.Get("user")!["name"]);
        Assert.Equal([1, 2, 3], second.Session.Get<int[]>("cart")!);
        Assert.Equal("A", second.Session.Get<string>("server"));
        var onB = await Wait.First(connectionsB);
        Assert.True(onB.Resumed);

        // B saves the changes made there; A sees them (the session lives in the database, not in either server).
        second.Session.Set("server", "B");
        await second.Send("sync").For();
        await onB.Session.FlushAsync().For();
        Assert.Equal("B", (string?)(await storeA.GetAsync(id))!["server"]);
    }
}
