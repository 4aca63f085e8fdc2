using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Cli;

/// <summary>
/// <c>--protocol socket-ipc</c> of <c>serve</c>, <c>send</c> and <c>listen</c> (CLI.md: the topic is the event, the message
/// its one argument), the commands run as real processes over temp Unix socket paths, with each other and with .NET servers.
/// </summary>
[Trait("Category", "Cli")]
public sealed class SocketIpcCliTests : IDisposable
{
    private static readonly UhuraServerOptions ServerOptions = UhuraServerOptions.Default with { Protocol = WireProtocol.SocketIpc };

    // A short name: a unix socket path must fit in 108 bytes.
    private readonly string _socketFile = Path.Combine(Path.GetTempPath(), $"cli-{Guid.NewGuid():N}"[..16] + ".sock");

    private string Uri => "unix://" + _socketFile;

    public void Dispose() => File.Delete(_socketFile);

    [Fact]
    public async Task Serve_prints_client_ids_without_a_session_and_each_topic_with_its_message_as_the_one_argument()
    {
        using var serve = CliProcess.Start("serve", "--listen", Uri, "--protocol", "socket-ipc");
        Assert.Equal(Uri, await ListeningEndpointAsync(serve));

        await SendAsync(Uri, "dessert", "{\"type\":\"cake\"}");
        var connect = await serve.NextLineAsync();
        Assert.Equal("connect", (string?)connect["type"]);
        var conn = (string)connect["conn"]!;
        Assert.True(Guid.TryParse(conn, out _), conn);
        Assert.Equal(JTokenType.Null, connect["session"]!.Type);
        Assert.False((bool)connect["resumed"]!);
        await AssertEventAsync(serve, conn, "dessert", JArray.Parse("[{\"type\":\"cake\"}]"));
        Assert.Equal(conn, (string?)(await serve.WaitForLineAsync("disconnect"))["conn"]);

        // No ARG_JSON: a frame without a message, printed with no argument.
        await SendAsync(Uri, "bare");
        conn = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;
        await AssertEventAsync(serve, conn, "bare", []);

        // --count without an ARG_JSON: the message is the sequence number.
        await SendAsync(Uri, "n", "--count", "3");
        var second = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;
        Assert.NotEqual(conn, second);
        for (var i = 0; i < 3; i++)
        {
            await AssertEventAsync(serve, second, "n", [i]);
        }

        // --count with one: the message is [n, ARG].
        await SendAsync(Uri, "m", "{\"k\":\"é\"}", "--count", "2");
        var third = (string)(await serve.WaitForLineAsync("connect"))["conn"]!;
        for (var i = 0; i < 2; i++)
        {
            await AssertEventAsync(serve, third, "m", [new JArray(i, JObject.Parse("{\"k\":\"é\"}"))]);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Serve_echo_answers_with_the_same_topic_and_message_and_removes_its_socket_file_on_SIGTERM()
    {
        using var serve = CliProcess.Start("serve", "--listen", Uri, "--protocol", "socket-ipc", "--echo");
        await ListeningEndpointAsync(serve);
        Assert.True(File.Exists(_socketFile));

        foreach (var (args, expected) in new[] { (new[] { "[1,{\"a\":null}]" }, JArray.Parse("[[1,{\"a\":null}]]")), ([], []) })
        {
            var (exitCode, send) = await CliProcess.RunAsync(["send", "--connect", Uri, "--protocol", "socket-ipc", "hi", .. args, "--wait-reply"]);
            using (send)
            {
                Assert.True(exitCode == 0, send.Stderr);
                var reply = await send.NextLineAsync();
                Assert.Equal("event", (string?)reply["type"]);
                Assert.Equal("hi", (string?)reply["event"]);
                Assert.True(JToken.DeepEquals(expected, reply["args"]), reply.ToString());
                Assert.Empty(await send.RemainingLinesAsync());
            }
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
        Assert.False(File.Exists(_socketFile), "the socket file is still there");
    }

    [Fact]
    public async Task Listen_to_serve_is_connected_without_resume_and_exits_one_when_serve_stops()
    {
        using var serve = CliProcess.Start("serve", "--listen", Uri, "--protocol", "socket-ipc");
        await ListeningEndpointAsync(serve);

        using var listen = CliProcess.Start("listen", "--connect", Uri, "--protocol", "socket-ipc");
        Assert.Equal("connecting", (string?)(await listen.NextLineAsync())["state"]);
        var connected = await listen.NextLineAsync();
        Assert.Equal("connected", (string?)connected["state"]);
        Assert.False((bool)connected["resumed"]!);
        var connect = await serve.WaitForLineAsync("connect");
        Assert.Equal(JTokenType.Null, connect["session"]!.Type);

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
        Assert.Equal("disconnected", (string?)(await listen.NextLineAsync())["state"]);
        Assert.Equal(1, await listen.WaitForExitAsync());
    }

    [Fact]
    public async Task Listen_reconnect_prints_the_named_topics_and_comes_back_when_the_server_is_replaced()
    {
        await using var first = new UhuraServer(ServerOptions);
        var accepted = new ReplaySubject<Connection>();
        first.Connections.Subscribe(accepted);
        await first.ListenAsync(Uri);

        using var listen = CliProcess.Start("listen", "--connect", Uri, "--protocol", "socket-ipc", "--reconnect", "greet", "bye");
        await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
        var connection = await Wait.First(accepted);
        await first.SendTo(connection.Id, "noise", 0).For();
        Assert.Equal(1, first.Broadcast("greet", new JObject { ["text"] = "hello" }));
        await connection.Send("bye").For();

        var greet = await listen.NextLineAsync();
        Assert.Equal("event", (string?)greet["type"]);
        Assert.Equal("greet", (string?)greet["event"]);
        Assert.True(JToken.DeepEquals(JArray.Parse("[{\"text\":\"hello\"}]"), greet["args"]), greet.ToString());
        var bye = await listen.NextLineAsync();
        Assert.Equal("bye", (string?)bye["event"]);
        Assert.True(JToken.DeepEquals(new JArray(), bye["args"]), bye.ToString());

        await first.CloseAsync().For(); // removes the socket file: the attempts fail until the next server listens
        Assert.Equal("disconnected", (string?)(await listen.NextLineAsync())["state"]);
        Assert.Equal("reconnecting", (string?)(await listen.NextLineAsync())["state"]);

        await using var second = new UhuraServer(ServerOptions);
        var next = Wait.First(second.Connections);
        await second.ListenAsync(Uri);
        var reconnected = await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
        Assert.False((bool)reconnected["resumed"]!);
        await (await next).Send("greet", "again").For();
        var again = await listen.WaitForLineAsync("event");
        Assert.True(JToken.DeepEquals(new JArray("again"), again["args"]), again.ToString());

        await listen.TerminateAsync();
        Assert.Equal(0, await listen.WaitForExitAsync());
        Assert.Equal("closed", (string?)(await listen.RemainingLinesAsync()).Last()["state"]);
    }

    [Fact]
    public async Task Send_started_before_the_server_listens_queues_its_events_and_every_one_arrives_in_order()
    {
        using var send = CliProcess.Start("send", "--connect", Uri, "--protocol", "socket-ipc", "early", "\"x\"", "--count", "5", "--timeout", "20", "--verbose");
        await send.WaitForStderrAsync("reconnecting (attempt 1"); // the first connect failed: nobody listens yet

        await using var server = new UhuraServer(ServerOptions);
        var received = server.Event("early").Take(5).Select(e => e.Args.Single()).ToList().ToTask();
        await server.ListenAsync(Uri);

        var exitCode = await send.WaitForExitAsync(TimeSpan.FromSeconds(20));
        Assert.True(exitCode == 0, $"exit {exitCode}: {send.Stderr}");
        var messages = await received.For();
        for (var i = 0; i < 5; i++)
        {
            Assert.True(JToken.DeepEquals(new JArray(i, "x"), messages[i]), messages[i].ToString());
        }
    }

    [Fact]
    public async Task Send_to_a_socket_nobody_listens_on_times_out_and_says_how_many_events_were_written()
    {
        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", Uri, "--protocol", "socket-ipc", "ping", "--timeout", "1");
        using (send)
        {
            Assert.Equal(1, exitCode);
            AssertOneLine(send.Stderr);
            Assert.Contains("0 of 1 events written", send.Stderr, StringComparison.Ordinal);
            Assert.Empty(await send.RemainingLinesAsync());
        }
    }

    [Theory]
    [InlineData("serve", "--listen", "tcp://127.0.0.1:0", "--protocol", "socket-ipc")]
    [InlineData("send", "--connect", "tcp://127.0.0.1:9", "--protocol", "socket-ipc", "ping")]
    [InlineData("listen", "--connect", "tcp://127.0.0.1:9", "--protocol", "socket-ipc")]
    [InlineData("send", "--connect", "unix:///tmp/never-used.sock", "--protocol", "socket-ipc", "ping", "1", "2")]
    [InlineData("send", "--connect", "unix:///tmp/never-used.sock", "--protocol", "socket-ipc", "ping", "1", "2", "--count", "3")]
    [InlineData("send", "--connect", "unix:///tmp/never-used.sock", "--protocol", "masterless", "ping")]
    public async Task Bad_usage_with_socket_ipc_exits_two_with_a_one_line_message_and_nothing_on_stdout(params string[] args)
    {
        var (exitCode, cli) = await CliProcess.RunAsync(args);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    private static async Task SendAsync(string uri, string topic, params string[] args)
    {
        var (exitCode, send) = await CliProcess.RunAsync(["send", "--connect", uri, "--protocol", "socket-ipc", topic, .. args]);
        using (send)
        {
            Assert.True(exitCode == 0, $"exit {exitCode}: {send.Stderr}");
            Assert.Empty(await send.RemainingLinesAsync());
        }
    }

    private static async Task AssertEventAsync(CliProcess serve, string conn, string topic, JArray args)
    {
        var e = await serve.NextLineAsync();
        Assert.Equal("event", (string?)e["type"]);
        Assert.Equal(conn, (string?)e["conn"]);
        Assert.Equal(topic, (string?)e["event"]);
        Assert.True(JToken.DeepEquals(args, e["args"]), e.ToString());
    }

    internal static async Task<string> ListeningEndpointAsync(CliProcess serve)
    {
        var first = await serve.NextLineAsync();
        Assert.Equal("listening", (string?)first["type"]);
        return (string)first["endpoint"]!;
    }

    internal static void AssertOneLine(string stderr)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}:\n{stderr}");
    }
}
