using System.Reactive.Linq;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Session;
using Rx.Uhura.Tests.Core;
using Rx.Uhura.Tests.Storage;

namespace Rx.Uhura.Tests.Cli;

/// <summary><c>uhura serve --store</c>, run as a real process.</summary>
[Trait("Category", "Cli")]
public sealed class CliStoreTests : IDisposable
{
    private static readonly ReconnectOptions Fast = new() { FirstDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) };
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static async Task<string> ListeningEndpointAsync(CliProcess serve)
    {
        var first = await serve.NextLineAsync();
        Assert.Equal("listening", (string?)first["type"]);
        return (string)first["endpoint"]!;
    }

    private static void AssertOneLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}:\n{stderr}");
    }

    [Fact]
    public async Task Serve_with_a_sqlite_store_resumes_a_client_session_after_a_SIGTERM_restart_on_the_same_socket()
    {
        var database = _folder.File("serve.db");
        var socket = Path.Combine(Path.GetTempPath(), $"uhura-cli-{Guid.NewGuid():N}.sock");
        var uri = "unix://" + socket;
        string[] args = ["serve", "--listen", uri, "--store", "sqlite:" + database];
        try
        {
            await using var client = UhuraClient.Connect(uri, new UhuraClientOptions { Reconnect = Fast });
            string id;
            using (var first = CliProcess.Start(args))
            {
                Assert.Equal(uri, await ListeningEndpointAsync(first));
                await client.WhenConnectedAsync().For();
                id = client.Session.Id!;
                var connect = await first.WaitForLineAsync("connect");
                Assert.False((bool)connect["resumed"]!);
                client.Session.Set("user", new { name = "ada" });
                await client.Send("sync").For();
                await first.WaitForLineAsync("session", line => (string?)line["key"] == "user");
                await first.TerminateAsync();
                Assert.Equal(0, await first.WaitForExitAsync());
            }

            using var second = CliProcess.Start(args);
            Assert.Equal(uri, await ListeningEndpointAsync(second));
            var again = await second.WaitForLineAsync("connect");
            Assert.Equal(id, (string?)again["session"]);
            Assert.True((bool)again["resumed"]!, again.ToString());
            var state = await Wait.First(client.State, s => s.Status == ConnectionStatus.Connected);
            Assert.True(state.Resumed);
            await client.DisposeAsync();
            await second.WaitForLineAsync("disconnect");

            // The key comes from the file, not from the client: a client that presents only the id gets it back.
            await using var stranger = await UhuraClient.ConnectAsync(uri, new UhuraClientOptions
            {
                InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = id },
            }).For();
            Assert.True(stranger.CurrentState.Resumed);
            Assert.Equal("ada", (string?)stranger.Session.Get("user")!["name"]);
            await stranger.Disconnect().For();
            await second.TerminateAsync();
            Assert.Equal(0, await second.WaitForExitAsync());
        }
        finally
        {
            File.Delete(socket);
        }
    }

    [Fact]
    public async Task Two_serve_processes_sharing_one_sqlite_file_resume_each_others_sessions()
    {
        var database = _folder.File("shared.db");
        using var a = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--store", "sqlite:" + database);
        using var b = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--store", "sqlite:" + database);
        var endpointA = await ListeningEndpointAsync(a);
        var endpointB = await ListeningEndpointAsync(b);

        string id;
        await using (var onA = await UhuraClient.ConnectAsync(endpointA).For())
        {
            id = onA.Session.Id!;
            onA.Session.Set("made-on", "A");
            await onA.Send("sync").For();
            await a.WaitForLineAsync("session");
            await onA.Disconnect().For();
            await a.WaitForLineAsync("disconnect");
        }

        await using var onB = await UhuraClient.ConnectAsync(endpointB, new UhuraClientOptions
        {
            InitialSession = new Dictionary<string, JToken> { [UhuraSession.IdKey] = id },
        }).For();
        Assert.True(onB.CurrentState.Resumed);
        Assert.Equal("A", onB.Session.Get<string>("made-on"));
        var connect = await b.WaitForLineAsync("connect");
        Assert.True((bool)connect["resumed"]!);
        await onB.Disconnect().For();
        await a.TerminateAsync();
        await b.TerminateAsync();
        Assert.Equal(0, await a.WaitForExitAsync());
        Assert.Equal(0, await b.WaitForExitAsync());
    }

    [Theory]
    [InlineData("sqlite:")]
    [InlineData("redis:localhost")]
    [InlineData("postgres:")]
    [InlineData("postgres:No Such Keyword=1")]
    [InlineData("Memory")]
    public async Task A_bad_store_spec_exits_two_with_a_one_line_message(string spec)
    {
        var (exitCode, cli) = await CliProcess.RunAsync("serve", "--listen", "tcp://127.0.0.1:0", "--store", spec);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Contains("store", cli.Stderr, StringComparison.Ordinal);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    [Fact]
    public async Task A_sqlite_file_that_cannot_be_opened_exits_one_with_a_one_line_message_before_listening()
    {
        var (exitCode, cli) = await CliProcess.RunAsync("serve", "--listen", "tcp://127.0.0.1:0", "--store", "sqlite:" + _folder.File("no/such/folder/x.db"));
        using (cli)
        {
            Assert.Equal(1, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Contains("session store", cli.Stderr, StringComparison.Ordinal);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    [Fact]
    public async Task Serve_with_a_postgres_store_creates_its_tables_and_saves_sessions_there()
    {
        var database = await (await PostgresServer.SharedAsync()).CreateDatabaseAsync();
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--store", "postgres:" + database);
        var endpoint = await ListeningEndpointAsync(serve);
        await using (var client = await UhuraClient.ConnectAsync(endpoint).For())
        {
            client.Session.Set("k", "v");
            await client.Send("sync").For();
            await serve.WaitForLineAsync("session");
            var id = client.Session.Id!;
            await client.Disconnect().For();
            await serve.WaitForLineAsync("disconnect");
            await using var store = new PostgreSql.PostgresSessionStore(database);
            var saved = await Wait.First(Observable.Interval(TimeSpan.FromMilliseconds(20)).SelectMany(_ => store.GetAsync(id).AsTask()).Where(s => s is not null));
            Assert.Equal("v", (string?)saved!["k"]);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }
}
