using System.Reactive.Linq;
using System.Reactive.Threading.Tasks;
using Npgsql;
using Rx.Uhura.PostgreSql;
using Rx.Uhura.Scaleout;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Tests.Storage;

namespace Rx.Uhura.Tests.Scaleout;

/// <summary>Two servers, each with its own <see cref="PostgresBackplane"/> on one real PostgreSQL database, and clients on each.</summary>
public sealed class PostgresBackplaneTests : IAsyncLifetime
{
    private readonly List<PostgresBackplane> _backplanes = [];
    private string _database = "";

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.SharedAsync();
        _database = await server.CreateDatabaseAsync();
    }

    public async Task DisposeAsync()
    {
        foreach (var backplane in _backplanes)
        {
            await backplane.DisposeAsync().AsTask().For();
        }
    }

    private async Task<PostgresBackplane> BackplaneAsync()
    {
        var backplane = await PostgresBackplane.StartAsync(PostgresBackplaneOptions.Default with
        {
            ConnectionString = _database,
            ReconnectDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
        }).For();
        _backplanes.Add(backplane);
        return backplane;
    }

    private async Task<Cluster> ClusterAsync() => await Cluster.StartAsync(await BackplaneAsync(), await BackplaneAsync());

    [Fact]
    public async Task A_broadcast_from_one_server_reaches_the_clients_of_both()
    {
        await using var cluster = await ClusterAsync();
        var (a, _) = await cluster.ConnectAsync(0);
        var (b1, _) = await cluster.ConnectAsync(1);
        var (b2, _) = await cluster.ConnectAsync(1);
        var received = new[] { a, b1, b2 }.Select(c => new Received(c, "news")).ToList();
        var end = new[] { a, b1, b2 }.Select(c => new Received(c, "end")).ToList();

        Assert.Equal(1, cluster[0].Broadcast("news", "héllo | %41", 7));
        cluster[0].Broadcast("end");

        foreach (var (r, e) in received.Zip(end))
        {
            await e.First();
            var news = Assert.Single(await r.Count(1));
            Assert.Equal("héllo | %41", news.Arg<string>(0));
            Assert.Equal(7, news.Arg<int>(1));
        }
    }

    [Fact]
    public async Task SendTo_a_client_of_the_other_server_completes_when_it_acknowledges()
    {
        await using var cluster = await ClusterAsync();
        var (client, connection) = await cluster.ConnectAsync(1);
        var hello = new Received(client, "hello");

        await cluster[0].SendTo(connection.Id, "hello", new { n = 1 }).For();
        Assert.Equal(1, (int)(await hello.First()).Args[0]["n"]!);
    }

    [Fact]
    public async Task SendTo_an_unknown_client_fails_with_BadClientException()
    {
        await using var backplane = await BackplaneAsync();
        await using var server = new UhuraServer(UhuraServerOptions.Default with { Backplane = backplane, BackplaneTimeout = TimeSpan.FromMilliseconds(300) });
        await Assert.ThrowsAsync<BadClientException>(() => server.SendTo("nobody", "hello").For());
    }

    [Fact]
    public async Task A_payload_larger_than_a_notification_crosses_through_the_table()
    {
        await using var cluster = await ClusterAsync();
        var (client, connection) = await cluster.ConnectAsync(1);
        var big = new Received(client, "big");
        var text = string.Concat(Enumerable.Range(0, 3000).Select(i => "é" + i)); // well over 8000 bytes

        cluster[0].Broadcast("big", text);
        Assert.Equal(text, (await big.First()).Arg<string>(0));

        await cluster[0].SendTo(connection.Id, "big", text + "!").For();
        Assert.Equal(text + "!", (await big.Count(2))[1].Arg<string>(0));

        await using var db = new NpgsqlConnection(_database);
        await db.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM uhura_backplane", db);
        Assert.Equal(2L, await count.ExecuteScalarAsync());
    }

    [Fact]
    public async Task The_backplane_recovers_when_its_listening_connection_is_killed()
    {
        await using var cluster = await ClusterAsync();
        var listener = _backplanes[1];
        var (client, connection) = await cluster.ConnectAsync(1);
        var news = new Received(client, "news");
        var lost = listener.Listening.SkipWhile(up => up).FirstAsync().ToTask();
        var back = listener.Listening.SkipWhile(up => up).SkipWhile(up => !up).FirstAsync().ToTask();
        var error = listener.Errors.FirstAsync().ToTask();

        await using (var db = new NpgsqlConnection(_database))
        {
            await db.OpenAsync();
            await using var kill = new NpgsqlCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", db);
            kill.Parameters.Add(new NpgsqlParameter { Value = PostgresBackplane.ListenerApplicationName });
            Assert.Equal(2L, await kill.ExecuteScalarAsync());
        }

        await lost.For();
        Assert.IsType<BackplaneException>(await error.For());
        await back.For();
        Assert.True(listener.IsListening);

        cluster[0].Broadcast("news", "after");
        Assert.Equal("after", (await news.First()).Arg<string>(0));
        await cluster[0].SendTo(connection.Id, "news", "sent").For();
    }
}
