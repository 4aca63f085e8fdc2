using System.Net;
using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Reactive.Threading.Tasks;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Cli;

/// <summary>The <c>uhura</c> command (CLI.md contract), run as a real process.</summary>
[Trait("Category", "Cli")]
public sealed class CliTests
{
    /// <summary>For the runs that reconnect: well above their backoff, below their <c>--timeout 20</c> plus slack.</summary>
    private static readonly TimeSpan LongTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Serve_on_port_zero_prints_listening_first_with_the_real_port()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0");

        var first = await serve.NextLineAsync();

        Assert.Equal("listening", (string?)first["type"]);
        var endpoint = (string)first["endpoint"]!;
        Assert.StartsWith("tcp://127.0.0.1:", endpoint, StringComparison.Ordinal);
        var port = int.Parse(endpoint["tcp://127.0.0.1:".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(port, 1, 65535);
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Send_with_count_delivers_numbered_events_that_serve_prints_and_exits_zero()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0");
        var endpoint = await ListeningEndpointAsync(serve);

        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", endpoint, "ping", "1", "\"x\"", "--count", "3");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
        }

        var connect = await serve.WaitForLineAsync("connect");
        var conn = (string)connect["conn"]!;
        Assert.False(string.IsNullOrEmpty((string?)connect["session"]));
        Assert.False((bool)connect["resumed"]!);
        for (var i = 0; i < 3; i++)
        {
            var e = await serve.NextLineAsync();
            Assert.Equal("event", (string?)e["type"]);
            Assert.Equal(conn, (string?)e["conn"]);
            Assert.Equal("ping", (string?)e["event"]);
            Assert.True(JToken.DeepEquals(new JArray(i, 1, "x"), e["args"]), e.ToString());
        }

        var disconnect = await serve.NextLineAsync();
        Assert.Equal("disconnect", (string?)disconnect["type"]);
        Assert.Equal(conn, (string?)disconnect["conn"]);
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Theory]
    [InlineData("native")]
    [InlineData("uhura")]
    public async Task Serve_accepts_either_wire_on_one_endpoint_and_send_speaks_the_one_asked_for(string protocol)
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--echo");
        var endpoint = await ListeningEndpointAsync(serve);
        var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", endpoint, "--protocol", protocol, "hi", "[1]", "--wait-reply");
        using (send)
        {
            Assert.True(exitCode == 0, send.Stderr);
            var reply = await send.WaitForLineAsync("event");
            Assert.Equal("hi", (string?)reply["event"]);
        }

        await serve.WaitForLineAsync("event");
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Serve_restricted_to_one_wire_turns_the_other_away_and_keeps_serving()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--protocol", "native");
        var endpoint = await ListeningEndpointAsync(serve);
        var (refused, node) = await CliProcess.RunAsync("send", "--connect", endpoint, "--protocol", "uhura", "x", "--timeout", "2");
        using (node)
        {
            Assert.Equal(1, refused);
        }

        var (ok, native) = await CliProcess.RunAsync("send", "--connect", endpoint, "y");
        using (native)
        {
            Assert.True(ok == 0, native.Stderr);
        }

        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Send_with_wait_reply_prints_the_event_that_serve_echo_sends_back()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0", "--echo");
        var endpoint = await ListeningEndpointAsync(serve);

        using var send = CliProcess.Start("send", "--connect", endpoint, "hello", "{\"a\":[1,2.5,null]}", "true", "--wait-reply");
        var reply = await send.NextLineAsync();
        var exitCode = await send.WaitForExitAsync();

        Assert.True(exitCode == 0, send.Stderr);
        Assert.Equal("event", (string?)reply["type"]);
        Assert.Equal("hello", (string?)reply["event"]);
        Assert.True(JToken.DeepEquals(JArray.Parse("[{\"a\":[1,2.5,null]},true]"), reply["args"]), reply.ToString());
        Assert.Empty(await send.RemainingLinesAsync());
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Serve_on_a_unix_socket_works_and_removes_the_socket_file_on_SIGTERM()
    {
        var path = Path.Combine(Path.GetTempPath(), $"uhura-cli-{Guid.NewGuid():N}.sock");
        var uri = "unix://" + path;
        try
        {
            using var serve = CliProcess.Start("serve", "--listen", uri);
            Assert.Equal(uri, await ListeningEndpointAsync(serve));
            Assert.True(File.Exists(path));

            var (exitCode, send) = await CliProcess.RunAsync("send", "--connect", uri, "over-unix", "42");
            using (send)
            {
                Assert.True(exitCode == 0, send.Stderr);
            }

            var e = await serve.WaitForLineAsync("event");
            Assert.Equal("over-unix", (string?)e["event"]);
            Assert.True(JToken.DeepEquals(new JArray(42), e["args"]));

            await serve.TerminateAsync();
            Assert.Equal(0, await serve.WaitForExitAsync());
            Assert.False(File.Exists(path), "the socket file is still there");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("serve", "--listen", "http://127.0.0.1:80")]
    [InlineData("serve", "--listen", "unix://relative/path")]
    [InlineData("send", "--connect", "tcp://127.0.0.1", "ping")]
    [InlineData("listen", "--connect", "nonsense")]
    public async Task A_bad_uri_exits_two_with_a_one_line_message(params string[] args)
    {
        var (exitCode, cli) = await CliProcess.RunAsync(args);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    [Theory]
    [InlineData("{bad")]
    [InlineData("x")]
    [InlineData("[1,")]
    [InlineData("1 2")]
    public async Task A_malformed_ARG_JSON_exits_two_with_a_one_line_message(string argJson)
    {
        // The endpoint is never contacted: the arguments are checked first.
        var (exitCode, cli) = await CliProcess.RunAsync("send", "--connect", "tcp://127.0.0.1:9", "ping", argJson);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Contains("JSON", cli.Stderr, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("send", "--connect", "tcp://127.0.0.1:9", "ping", "--no-such-option")]
    [InlineData("serve", "--listen", "tcp://127.0.0.1:0", "--no-such-option")]
    [InlineData("serve")]
    [InlineData("send", "--connect", "tcp://127.0.0.1:9", "--protocol", "socket-ipc", "ping")]
    [InlineData("serve", "--listen", "tcp://127.0.0.1:0", "--store", "sqlite")]
    [InlineData("no-such-command")]
    public async Task Bad_usage_exits_two_with_a_one_line_message_and_nothing_on_stdout(params string[] args)
    {
        var (exitCode, cli) = await CliProcess.RunAsync(args);
        using (cli)
        {
            Assert.Equal(2, exitCode);
            AssertOneLine(cli.Stderr);
            Assert.Empty(await cli.RemainingLinesAsync());
        }
    }

    [Fact]
    public async Task Send_to_an_endpoint_nobody_listens_on_retries_until_the_timeout_then_exits_one()
    {
        var port = CliProcess.FreePort();

        using var send = CliProcess.Start("send", "--connect", $"tcp://127.0.0.1:{port}", "ping", "--timeout", "2");
        var exitCode = await send.WaitForExitAsync();

        Assert.Equal(1, exitCode);
        AssertOneLine(send.Stderr);
        Assert.Contains("timed out after 2 s", send.Stderr, StringComparison.Ordinal);
        Assert.Contains("0 of 1 events acknowledged", send.Stderr, StringComparison.Ordinal);
        Assert.Contains("could not connect", send.Stderr, StringComparison.Ordinal);
        Assert.Empty(await send.RemainingLinesAsync());
    }

    [Fact]
    public async Task Send_reconnects_when_the_connection_is_cut_and_every_event_arrives_exactly_once_in_order()
    {
        const int Total = 2000;
        const int Cuts = 3;
        await using var server = new UhuraServer();
        var received = new List<int>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connections = new List<Connection>();
        var cut = 0;
        using var subscription = server.Connections.Subscribe(c =>
        {
            int index;
            lock (connections)
            {
                index = connections.Count;
                connections.Add(c);
            }

            var onThisLink = 0;
            c.Event("n").Subscribe(e =>
            {
                lock (received)
                {
                    received.Add(e.Arg<int>(0));
                    if (received.Count == Total)
                    {
                        all.TrySetResult();
                    }
                }

                if (index < Cuts && ++onThisLink == 200)
                {
                    Interlocked.Increment(ref cut);
                    c.Dispose(); // cut the link with events in flight (those it already read are still delivered)
                }
            });
        });
        await server.ListenAsync("tcp://127.0.0.1:0");

        using var send = CliProcess.Start("send", "--connect", server.Uri!, "n", "--count", Total.ToString(System.Globalization.CultureInfo.InvariantCulture), "--timeout", "20");
        var exitCode = await send.WaitForExitAsync(LongTimeout);

        Assert.True(exitCode == 0, $"exit {exitCode}: {send.Stderr}");
        await all.Task.WaitAsync(CliProcess.Timeout);
        lock (received)
        {
            Assert.Equal(Enumerable.Range(0, Total), received);
        }

        lock (connections)
        {
            // Each cut link is followed by another (how many links get cut depends on how much each read before its
            // cut: events already read are delivered, and may finish the run).
            Assert.True(cut >= 1, "no link was cut");
            Assert.True(connections.Count > Volatile.Read(ref cut), $"{connections.Count} connections after {cut} cuts");
            Assert.False(connections[0].Resumed);
            Assert.All(connections.Skip(1), c => Assert.True(c.Resumed, $"{c} was not resumed"));
            Assert.Single(connections.Select(c => c.Session.Id).Distinct());
        }
    }

    [Fact]
    public async Task Send_started_before_the_server_listens_waits_for_it_and_exits_zero()
    {
        // The port is held by a plain listener that resets the first connection attempt (so the send is known to be
        // running and retrying), then freed; the server starts listening on it only after that.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        var uri = $"tcp://127.0.0.1:{port}";
        using var send = CliProcess.Start("send", "--connect", uri, "early", "\"x\"", "--count", "5", "--timeout", "20");
        try
        {
            using var attempt = await probe.AcceptTcpClientAsync().WaitAsync(CliProcess.Timeout);
            attempt.Client.LingerState = new LingerOption(true, 0); // reset, no TIME_WAIT on the port
        }
        finally
        {
            probe.Stop();
        }

        await using var server = new UhuraServer();
        var received = new List<JArray>();
        var five = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = server.Connections.Subscribe(c => c.Event("early").Subscribe(e =>
        {
            lock (received)
            {
                received.Add(new JArray(e.Args.Select(a => a.DeepClone())));
                if (received.Count == 5)
                {
                    five.TrySetResult();
                }
            }
        }));
        await server.ListenAsync(uri);

        var exitCode = await send.WaitForExitAsync(LongTimeout);
        Assert.True(exitCode == 0, $"exit {exitCode}: {send.Stderr}");
        await five.Task.WaitAsync(CliProcess.Timeout);
        lock (received)
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.True(JToken.DeepEquals(new JArray(i, "x"), received[i]), received[i].ToString());
            }
        }
    }

    [Fact]
    public async Task Send_exits_one_on_timeout_when_the_peer_never_completes_the_handshake()
    {
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        try
        {
            var (exitCode, cli) = await CliProcess.RunAsync("send", "--connect", $"tcp://127.0.0.1:{port}", "ping", "--timeout", "1");
            using (cli)
            {
                Assert.Equal(1, exitCode);
                AssertOneLine(cli.Stderr);
                Assert.Contains("timed out", cli.Stderr, StringComparison.Ordinal);
            }
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public async Task Serve_prints_the_session_changes_made_by_the_peer()
    {
        using var serve = CliProcess.Start("serve", "--listen", "tcp://127.0.0.1:0");
        var endpoint = await ListeningEndpointAsync(serve);
        await using var client = await UhuraClient.ConnectAsync(endpoint);

        var connect = await serve.WaitForLineAsync("connect");
        Assert.Equal(client.Session.Id, (string?)connect["session"]);
        client.Session.Set("user", new { name = "ada" });
        await client.Send("sync"); // acknowledged after the _set that precedes it was read

        var change = await serve.WaitForLineAsync("session");
        Assert.Equal((string?)connect["conn"], (string?)change["conn"]);
        Assert.Equal("user", (string?)change["key"]);
        Assert.True(JToken.DeepEquals(JObject.Parse("{\"name\":\"ada\"}"), change["value"]), change.ToString());
        await client.Disconnect();
        await serve.TerminateAsync();
        Assert.Equal(0, await serve.WaitForExitAsync());
    }

    [Fact]
    public async Task Listen_prints_a_connected_state_and_the_named_events_the_server_sends_and_exits_one_when_the_connection_is_lost()
    {
        var server = new UhuraServer();
        try
        {
            var accepted = new TaskCompletionSource<Connection>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var subscription = server.Connections.Subscribe(c => accepted.TrySetResult(c));
            await server.ListenAsync("tcp://127.0.0.1:0");

            using var listen = CliProcess.Start("listen", "--connect", server.Uri!, "greet", "bye");
            var connected = await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
            Assert.False((bool)connected["resumed"]!);

            var connection = await accepted.Task.WaitAsync(CliProcess.Timeout);
            await connection.Send("noise", 0);
            await connection.Send("greet", "hello", 1);
            await connection.Send("bye");

            var greet = await listen.NextLineAsync();
            Assert.Equal("event", (string?)greet["type"]);
            Assert.Equal("greet", (string?)greet["event"]);
            Assert.True(JToken.DeepEquals(new JArray("hello", 1), greet["args"]), greet.ToString());
            var bye = await listen.NextLineAsync();
            Assert.Equal("bye", (string?)bye["event"]);
            Assert.True(JToken.DeepEquals(new JArray(), bye["args"]));

            await server.CloseAsync();
            var disconnected = await listen.NextLineAsync();
            Assert.Equal("state", (string?)disconnected["type"]);
            Assert.Equal("disconnected", (string?)disconnected["state"]);
            Assert.Equal(1, await listen.WaitForExitAsync());
            AssertOneLine(listen.Stderr);
        }
        finally
        {
            await server.CloseAsync();
        }
    }

    [Fact]
    public async Task Listen_closes_gracefully_and_exits_zero_on_SIGTERM()
    {
        var server = new UhuraServer();
        try
        {
            var disconnected = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var subscription = server.Connections.Subscribe(c => c.Disconnected.Subscribe(i => disconnected.TrySetResult(i)));
            await server.ListenAsync("tcp://127.0.0.1:0");

            using var listen = CliProcess.Start("listen", "--connect", server.Uri!);
            await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
            await listen.TerminateAsync();

            Assert.Equal(0, await listen.WaitForExitAsync());
            var last = (await listen.RemainingLinesAsync()).Last();
            Assert.Equal("closed", (string?)last["state"]);
            var info = await disconnected.Task.WaitAsync(CliProcess.Timeout);
            Assert.Equal(DisconnectReason.RemoteClose, info.Reason);
        }
        finally
        {
            await server.CloseAsync();
        }
    }

    [Fact]
    public async Task Listen_reconnect_resumes_the_session_after_a_drop_and_prints_the_states_and_later_events()
    {
        await using var server = new UhuraServer();
        var connections = new ReplaySubject<Connection>();
        using var subscription = server.Connections.Subscribe(connections);
        await server.ListenAsync("tcp://127.0.0.1:0");

        using var listen = CliProcess.Start("listen", "--connect", server.Uri!, "--reconnect", "greet");
        Assert.Equal("connecting", (string?)(await listen.NextLineAsync())["state"]);
        var connected = await listen.NextLineAsync();
        Assert.Equal("connected", (string?)connected["state"]);
        Assert.False((bool)connected["resumed"]!);
        Assert.False((bool)connected["reconnect"]!);

        var first = await connections.FirstAsync().ToTask().WaitAsync(CliProcess.Timeout);
        first.Dispose(); // the server drops the link

        var disconnected = await listen.NextLineAsync();
        Assert.Equal("disconnected", (string?)disconnected["state"]);
        Assert.False(string.IsNullOrEmpty((string?)disconnected["reason"]), disconnected.ToString());
        var reconnecting = await listen.NextLineAsync();
        Assert.Equal("reconnecting", (string?)reconnecting["state"]);
        Assert.Equal(1, (int)reconnecting["attempt"]!);
        Assert.Equal(JTokenType.Integer, reconnecting["delay"]!.Type);
        Assert.InRange((long)reconnecting["delay"]!, 0, 5000);
        var reconnected = await listen.WaitForLineAsync("state", l => (string?)l["state"] == "connected");
        Assert.True((bool)reconnected["resumed"]!, reconnected.ToString());
        Assert.True((bool)reconnected["reconnect"]!, reconnected.ToString());

        var second = await connections.Skip(1).FirstAsync().ToTask().WaitAsync(CliProcess.Timeout);
        Assert.True(second.Resumed);
        Assert.Equal(first.Session.Id, second.Session.Id);
        await second.Send("noise");
        await second.Send("greet", "again", 2);
        var greet = await listen.NextLineAsync();
        Assert.Equal("event", (string?)greet["type"]);
        Assert.Equal("greet", (string?)greet["event"]);
        Assert.True(JToken.DeepEquals(new JArray("again", 2), greet["args"]), greet.ToString());

        await listen.TerminateAsync();
        Assert.Equal(0, await listen.WaitForExitAsync());
        Assert.Equal("closed", (string?)(await listen.RemainingLinesAsync()).Last()["state"]);
    }

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
}
