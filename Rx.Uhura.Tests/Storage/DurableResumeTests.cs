using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Chaos;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Storage;

/// <summary>
/// The native protocol's resume state kept in the session store: a client that resumes after the server restarted (a new
/// <see cref="UhuraServer"/> on the same address and store) gets what the old server had not delivered, exactly once,
/// and what it sends while away reaches the new server exactly once. Each store runs the same scenarios.
/// </summary>
public abstract class DurableResumeTests : IAsyncLifetime
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100) };
    private readonly string _directory = Directory.CreateTempSubdirectory("rx-uhura-resume-").FullName;
    private readonly List<IAsyncDisposable> _disposables = [];

    /// <summary>Opens the store as a server process would at start: a new instance over the same data on each call.</summary>
    protected abstract Task<ISessionStore> OpenStoreAsync(string directory);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _disposables.Count - 1; i >= 0; i--)
        {
            await _disposables[i].DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private async Task<(UhuraServer Server, ReplaySubject<Connection> Connections)> StartServerAsync(string path)
    {
        var store = await OpenStoreAsync(_directory);
        if (store is IAsyncDisposable disposable)
        {
            _disposables.Add(disposable);
        }

        var server = new UhuraServer(UhuraServerOptions.Default with { SessionStore = store });
        _disposables.Add(server);
        var connections = new ReplaySubject<Connection>();
        server.Connections.Subscribe(connections);
        await server.ListenAsync("unix://" + path);
        return (server, connections);
    }

    /// <summary>A client connected through a proxy in front of <paramref name="path"/>: the proxy cuts and refuses on demand.</summary>
    private async Task<(ChaosProxy Proxy, UhuraClient Client)> ConnectThroughProxyAsync(string path)
    {
        var proxy = ChaosProxy.Start(new UnixDomainSocketEndPoint(path));
        _disposables.Add(proxy);
        var client = UhuraClient.Connect(proxy.Uri, new UhuraClientOptions { Reconnect = Fast });
        _disposables.Add(client);
        await client.WhenConnectedAsync().For();
        return (proxy, client);
    }

    /// <summary>Drops the client's link and keeps it away until <see cref="ChaosProxy.SetRefusing"/> false.</summary>
    private static async Task CutAsync(ChaosProxy proxy, Connection serverSide)
    {
        proxy.SetRefusing(true);
        proxy.CutAll();
        await Wait.First(serverSide.Disconnected);
    }

    [Fact]
    public async Task Events_the_old_server_could_not_deliver_reach_the_client_after_a_restart_exactly_once()
    {
        var path = Path.Combine(_directory, "s.sock");
        var (first, firstConnections) = await StartServerAsync(path);
        var (proxy, client) = await ConnectThroughProxyAsync(path);
        var news = new ReplaySubject<int>();
        client.Event("news").Select(e => e.Arg<int>(0)).Subscribe(news);
        var link = await Wait.First(firstConnections);
        await link.Send("news", 0).For(); // acknowledged: the stream is established on both sides

        await CutAsync(proxy, link);
        for (var i = 1; i <= 5; i++)
        {
            Assert.True(link.Post("news", i)); // the link is gone: they wait with the session for the client
        }

        await first.CloseAsync().For();

        var (_, secondConnections) = await StartServerAsync(path);
        proxy.SetRefusing(false);
        var resumed = await Wait.First(secondConnections);
        Assert.True(resumed.Resumed);
        Assert.Equal([0, 1, 2, 3, 4, 5], await news.Take(6).ToList().ToTask().For());

        // Nothing more arrives: a marker sent now is the next event.
        await resumed.Send("news", 6).For();
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], await news.Take(7).ToList().ToTask().For());
    }

    [Fact]
    public async Task A_client_resumes_its_streams_on_another_server_sharing_the_store()
    {
        var (first, firstConnections) = await StartServerAsync(Path.Combine(_directory, "a.sock"));
        var secondPath = Path.Combine(_directory, "b.sock");
        var (second, secondConnections) = await StartServerAsync(secondPath);
        var (proxy, client) = await ConnectThroughProxyAsync(Path.Combine(_directory, "a.sock"));
        var news = new ReplaySubject<int>();
        client.Event("news").Select(e => e.Arg<int>(0)).Subscribe(news);
        var link = await Wait.First(firstConnections);
        await link.Send("news", 0).For();
        await client.Send("tick", 0).For();

        await CutAsync(proxy, link);
        for (var i = 1; i <= 3; i++)
        {
            Assert.True(link.Post("news", i));
        }

        await first.Sessions.FlushAsync().For(); // the first server stays up; its saves have landed
        proxy.Retarget(new UnixDomainSocketEndPoint(secondPath));
        proxy.SetRefusing(false);
        var moved = await Wait.First(secondConnections);
        Assert.True(moved.Resumed);
        Assert.Equal(link.Session.Id, moved.Session.Id);
        Assert.Equal([0, 1, 2, 3], await news.Take(4).ToList().ToTask().For());

        var ticks = new ReplaySubject<int>();
        second.Event("tick").Select(e => e.Arg<int>(0)).Subscribe(ticks);
        await client.Send("tick", 1).For(); // the streams continue: number 2 of the client's, after the first server's 1
        await moved.Send("news", 4).For();
        Assert.Equal([1], await ticks.Take(1).ToList().ToTask().For());
        Assert.Equal([0, 1, 2, 3, 4], await news.Take(5).ToList().ToTask().For());
    }

    [Fact]
    public async Task What_the_client_sends_while_the_server_restarts_reaches_the_new_server_exactly_once()
    {
        var path = Path.Combine(_directory, "s.sock");
        var (first, firstConnections) = await StartServerAsync(path);
        var (proxy, client) = await ConnectThroughProxyAsync(path);
        var link = await Wait.First(firstConnections);
        var before = new ReplaySubject<int>();
        link.Event("tick").Select(e => e.Arg<int>(0)).Subscribe(before);
        for (var i = 0; i < 3; i++)
        {
            await client.Send("tick", i).For();
        }

        await CutAsync(proxy, link);
        await first.CloseAsync().For();
        var sends = Enumerable.Range(3, 3).Select(i => client.Send("tick", i)).ToArray();

        var (second, secondConnections) = await StartServerAsync(path);
        var after = new ReplaySubject<int>();
        second.Event("tick").Select(e => e.Arg<int>(0)).Subscribe(after);
        proxy.SetRefusing(false);
        await Task.WhenAll(sends).For();
        Assert.True((await Wait.First(secondConnections)).Resumed);
        Assert.Equal([0, 1, 2], await before.Take(3).ToList().ToTask().For());
        await client.Send("tick", 6).For();
        Assert.Equal([3, 4, 5, 6], await after.Take(4).ToList().ToTask().For());
    }

    [Fact]
    public async Task The_session_keys_come_back_after_a_restart()
    {
        var path = Path.Combine(_directory, "s.sock");
        var (first, _) = await StartServerAsync(path);
        var (proxy, client) = await ConnectThroughProxyAsync(path);
        client.Session.Set("user", "ada");
        await client.Send("sync").For(); // the set travels before this event and is saved by the server
        var sessionId = client.Session.Id;

        proxy.SetRefusing(true);
        proxy.CutAll();
        await first.CloseAsync().For();
        var (_, secondConnections) = await StartServerAsync(path);
        proxy.SetRefusing(false);
        var resumed = await Wait.First(secondConnections);
        Assert.True(resumed.Resumed);
        Assert.Equal(sessionId, resumed.Session.Id);
        Assert.Equal("ada", resumed.Session.Get<string>("user"));
    }
}

/// <summary>One <see cref="InMemorySessionStore"/> shared by both servers: a restart within one process.</summary>
public sealed class InMemoryDurableResumeTests : DurableResumeTests
{
    private readonly InMemorySessionStore _store = new();

    protected override Task<ISessionStore> OpenStoreAsync(string directory) => Task.FromResult<ISessionStore>(_store);
}

/// <summary>A new <see cref="Sqlite.SqliteSessionStore"/> on the same file for each server: a real restart's view.</summary>
public sealed class SqliteDurableResumeTests : DurableResumeTests
{
    protected override Task<ISessionStore> OpenStoreAsync(string directory)
        => Task.FromResult<ISessionStore>(new Sqlite.SqliteSessionStore(Path.Combine(directory, "sessions.db")));
}

/// <summary>A new <see cref="PostgreSql.PostgresSessionStore"/> on the same database for each server (a real PostgreSQL 15).</summary>
public sealed class PostgresDurableResumeTests : DurableResumeTests
{
    private string? _connectionString;

    protected override async Task<ISessionStore> OpenStoreAsync(string directory)
    {
        _connectionString ??= await (await PostgresServer.SharedAsync()).CreateDatabaseAsync();
        return new PostgreSql.PostgresSessionStore(_connectionString);
    }
}
