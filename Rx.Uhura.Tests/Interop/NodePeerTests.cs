using System.Diagnostics;
using System.Globalization;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Tests.Interop;

/// <summary>The harness itself: the Node uhura drivers talk to each other through <see cref="NodePeer"/>.</summary>
[Trait("Category", "Interop")]
public sealed class NodePeerTests
{
    [Fact]
    public async Task A_node_client_event_with_an_ack_reaches_the_node_server_with_its_arguments_and_the_ack_comes_back()
    {
        await using var server = await NodePeer.StartAsync("uhura-server.js");
        var port = (int)(await server.WaitForAsync(Is("listening")))["port"]!;
        await using var client = await NodePeer.StartAsync("uhura-client.js", port.ToString(CultureInfo.InvariantCulture));

        // Until the server's connect element arrives the Node client sends without ack ids and runs
        // the callback at once, so wait for it to see a real ack on the wire.
        await client.WaitForAsync(line => Type(line) == "connect" && line["config"]?.Type == JTokenType.Object);
        await client.SendAsync(new { cmd = "send", @event = "ping", args = new object[] { 1, "two", new { x = 3 } }, ack = "ping-1" });

        var received = await server.WaitForAsync(line => Type(line) == "event" && (string?)line["event"] == "ping");
        Assert.True(
            JToken.DeepEquals(JArray.Parse("""[1, "two", {"x": 3}]"""), received["args"]),
            $"args were {received["args"]}");
        var ack = await client.WaitForAsync(Is("ack"));
        Assert.Equal("ping-1", (string?)ack["tag"]);
    }

    [Fact]
    public async Task A_line_skipped_by_one_wait_is_still_found_by_a_later_wait()
    {
        await using var server = await NodePeer.StartAsync("uhura-server.js");
        var port = (int)(await server.WaitForAsync(Is("listening")))["port"]!;
        await using var client = await NodePeer.StartAsync("uhura-client.js", port.ToString(CultureInfo.InvariantCulture));

        var fromServer = await client.WaitForAsync(line => Type(line) == "connect" && line["config"]?.Type == JTokenType.Object);
        var local = await client.WaitForAsync(line => Type(line) == "connect" && line["config"]?.Type == JTokenType.Null);

        Assert.True(IndexOf(client, local) < IndexOf(client, fromServer), "the local connect comes first");
        await Assert.ThrowsAsync<TimeoutException>(
            () => client.WaitForAsync(line => Type(line) == "connect" && line["config"]?.Type == JTokenType.Null, TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task A_wait_that_times_out_says_what_the_peer_printed()
    {
        await using var server = await NodePeer.StartAsync("uhura-server.js");
        await server.WaitForAsync(Is("listening"));

        var error = await Assert.ThrowsAsync<TimeoutException>(
            () => server.WaitForAsync(Is("never-printed"), TimeSpan.FromMilliseconds(300)));

        Assert.Contains("\"type\":\"listening\"", error.Message, StringComparison.Ordinal);
        Assert.Contains("stderr", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Waiting_on_a_peer_that_has_exited_fails_at_once_instead_of_waiting_out_the_timeout()
    {
        await using var server = await NodePeer.StartAsync("uhura-server.js");
        await server.WaitForAsync(Is("listening"));
        await server.SendAsync(new { cmd = "exit" });

        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(
            () => server.WaitForAsync(Is("never-printed"), TimeSpan.FromSeconds(30)));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");
        Assert.Contains("exited", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_the_driver_cannot_carry_out_comes_back_as_an_error_line()
    {
        await using var server = await NodePeer.StartAsync("uhura-server.js");
        await server.WaitForAsync(Is("listening"));

        await server.SendAsync(new { cmd = "send", conn = 42, @event = "nobody" });

        var error = await server.WaitForAsync(Is("error"));
        Assert.Equal("command", (string?)error["source"]);
        Assert.Contains("42", (string?)error["message"], StringComparison.Ordinal);
    }

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static string? Type(JObject line) => (string?)line["type"];

    private static int IndexOf(NodePeer peer, JObject line)
    {
        var received = peer.Received;
        for (var i = 0; i < received.Count; i++)
        {
            if (ReferenceEquals(received[i], line))
            {
                return i;
            }
        }

        return -1;
    }
}
