using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Reactive.Linq;
using System.Reactive.Subjects;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Mesh;
using Rx.Uhura.Tests.Core;

namespace Rx.Uhura.Tests.Interop;

/// <summary>
/// A .NET <see cref="UhuraNode"/> on the masterless wire against real <c>masterless@0.4.1</c> nodes
/// (<c>interop/masterless-node.js</c>) and against raw sockets speaking its framing. Wire facts:
/// <c>interop/MASTERLESS-NOTES.md</c>.
/// </summary>
[Trait("Category", "Interop")]
public sealed class MasterlessInteropTests : IAsyncLifetime
{
    private static readonly UhuraNodeOptions Masterless = UhuraNodeOptions.Default with { Protocol = MeshProtocol.Masterless };

    // Everything JSON.parse and JSON.stringify carry unchanged: non-BMP characters, the separators JavaScript does not
    // escape, control characters, escapes, nesting, numbers up to 2^53.
    private static readonly JObject Awkward = JObject.Parse(
        """
        {"text":"é😀 \u2028\u2029 \u0000\u001f \"quoted\" \\ tab\t crlf\r\n","n":[1,2.5,-3e-7,9007199254740991],
         "nested":{"deep":{"deeper":[true,false,null,{"empty":{}},[]]}},"": "empty key"}
        """);

    private readonly List<UhuraNode> _nodes = [];
    private readonly List<NodePeer> _processes = [];
    private readonly List<RawMasterless> _raws = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // Sockets and processes first: a .NET node then closes without waiting for anyone's goodbye.
        await Task.WhenAll(_raws.Select(r => r.DisposeAsync().AsTask()).Concat(_processes.Select(p => p.DisposeAsync().AsTask())));
        await Task.WhenAll(_nodes.Select(n => n.CloseAsync())).WaitAsync(TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task A_dotnet_node_dials_a_node_node_and_both_see_connect_with_the_right_id_and_info_and_packets_cross_both_ways()
    {
        var dotnet = await StartDotNetAsync("dotnet");
        var node = await StartNodeAsync("node");

        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info).For());
        var initialized = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Initialized);
        Assert.Equal(node.Id, initialized.PeerId);
        Assert.Equal(node.Info, initialized.Info);
        Assert.False(initialized.IsReconnect);
        var connect = await node.Peer.WaitForAsync(Is("connect"));
        Assert.Equal(dotnet.Id, (string?)connect["id"]);
        Assert.Equal(dotnet.Info, (string?)connect["info"]);

        await AssertPacketsCrossAsync(dotnet, node, Awkward);
        Assert.Equal([node.Id], dotnet.Node.Peers);
        Assert.False(dotnet.Node.Send("nobody", new { lost = true }));
        AssertNoLoss(dotnet, node);

        // Disconnect(id) forgets the kept peer: the Node node, which does not keep, sees the end as its disconnect.
        Assert.True(dotnet.Node.Disconnect(node.Id));
        Assert.Null((await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == node.Id)).Error);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("disconnect")))["id"]);
        Assert.Empty(dotnet.Node.Peers);
        Assert.False(dotnet.Node.Send(node.Id, new { lost = true }));
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind is NodeEventKind.Backoff or NodeEventKind.Reconnect);
    }

    [Fact]
    public async Task A_node_node_dials_a_dotnet_node_and_both_see_connect_with_the_right_id_and_info_and_packets_cross_both_ways()
    {
        var dotnet = await StartDotNetAsync("dotnet");
        var node = await StartNodeAsync("node");
        var peerConnected = Wait.First(dotnet.Node.PeerConnected);

        await node.Peer.SendAsync(new { cmd = "keep", id = dotnet.Id });
        await node.Peer.SendAsync(new { cmd = "connect", uri = dotnet.Info });

        var result = await node.Peer.WaitForAsync(Is("connectResult"));
        Assert.Equal(JTokenType.Null, result["error"]?.Type);
        Assert.Equal(dotnet.Id, (string?)result["remoteId"]);
        var connect = await node.Peer.WaitForAsync(Is("connect"));
        Assert.Equal(dotnet.Id, (string?)connect["id"]);
        Assert.Equal(dotnet.Info, (string?)connect["info"]);
        Assert.Equal(node.Id, await peerConnected);
        // The incoming side learns the peer's address from the id packet.
        var initialized = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Initialized);
        Assert.Equal(node.Id, initialized.PeerId);
        Assert.Equal(node.Info, initialized.Info);

        await AssertPacketsCrossAsync(dotnet, node, Awkward);
        Assert.Equal([node.Id], dotnet.Node.Peers);
        AssertNoLoss(dotnet, node);
    }

    [Fact]
    public async Task A_multi_dispatch_reaches_each_known_node_once_per_mention_from_dotnet_and_from_node()
    {
        var hub = await StartDotNetAsync("hub");
        var first = await StartNodeAsync("first");
        var second = await StartNodeAsync("second");
        Assert.Equal(first.Id, await hub.Node.ConnectAsync(first.Info).For());
        Assert.Equal(second.Id, await hub.Node.ConnectAsync(second.Info).For());
        await first.Peer.WaitForAsync(Is("connect"));
        await second.Peer.WaitForAsync(Is("connect"));

        // Encoded once, written to each; a repeated id is written twice, an unknown one is skipped (as masterless does).
        Assert.Equal(3, hub.Node.Send([first.Id, "nobody", second.Id, first.Id], new JObject { ["all"] = "é😀" }));
        foreach (var spoke in new[] { first, first, second })
        {
            var message = await spoke.Peer.WaitForAsync(Is("message"));
            Assert.Equal(hub.Id, (string?)message["from"]);
            Assert.True(JToken.DeepEquals(new JObject { ["all"] = "é😀" }, message["packet"]), message.ToString());
        }

        Assert.Equal(0, hub.Node.Send(["nobody", "nobody-else"], new { lost = true }));

        // A Node node's send([ids]) to the .NET node and to another Node node.
        await first.Peer.SendAsync(new { cmd = "keep", id = second.Id });
        await first.Peer.SendAsync(new { cmd = "connect", uri = second.Info });
        Assert.Equal(second.Id, (string?)(await first.Peer.WaitForAsync(Is("connectResult")))["remoteId"]);
        await first.Peer.SendAsync(new { cmd = "send", to = new[] { hub.Id, "nobody", second.Id }, packet = Awkward });
        Assert.Equal(2, (int?)(await first.Peer.WaitForAsync(Done("send")))["result"]);
        var atHub = await hub.Messages.WaitAsync(m => m.SenderId == first.Id);
        Assert.True(JToken.DeepEquals(Awkward, atHub.Packet), atHub.Packet.ToString());
        var atSecond = await second.Peer.WaitForAsync(Is("message"));
        Assert.Equal(first.Id, (string?)atSecond["from"]);
        Assert.True(JToken.DeepEquals(Awkward, atSecond["packet"]), atSecond.ToString());
        Assert.Equal(2, CountMessages(first.Peer, from: hub.Id));
        Assert.Equal(1, CountMessages(second.Peer, from: hub.Id));
        AssertNoLoss(hub, first, second);
    }

    [Fact]
    public async Task Simultaneous_connects_that_both_keep_leave_exactly_one_tcp_connection_over_which_both_talk_ten_rounds_out_of_ten()
    {
        // The interleavings differ from round to round: either dial may win, and the loser is closed at the id packet,
        // at the priority, or answered with priority 0. Ten rounds see most of them on most runs.
        for (var round = 0; round < 10; round++)
        {
            var dotnet = await StartDotNetAsync($"dotnet-{round}");
            var node = await StartNodeAsync($"node-{round}");
            await node.Peer.SendAsync(new { cmd = "keep", id = dotnet.Id });
            await node.Peer.WaitForAsync(Done("keep"));

            // Both dial at once (the Node dial is sent first: its command crosses a pipe before its socket opens).
            var nodeDials = node.Peer.SendAsync(new { cmd = "connect", uri = dotnet.Info });
            var dotnetDials = dotnet.Node.ConnectAsync(node.Info);
            await nodeDials;
            Assert.Equal(node.Id, await dotnetDials.For());
            // The Node attempt reports once, won or lost ("connection closed", "duplicate connection").
            await node.Peer.WaitForAsync(Is("connectResult"));
            var connect = await node.Peer.WaitForAsync(Is("connect"));
            Assert.Equal(dotnet.Id, (string?)connect["id"]);
            await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Initialized && e.PeerId == node.Id);

            await EventuallyAsync(() => EstablishedBetween(dotnet.Port, node.Port) == 1, () => $"round {round}: {EstablishedBetween(dotnet.Port, node.Port)} connections between the two nodes");
            await AssertPacketsCrossAsync(dotnet, node, new JObject { ["round"] = round });
            Assert.Equal(1, EstablishedBetween(dotnet.Port, node.Port));
            Assert.Single(node.Peer.Received, line => Type(line) == "connect");
            Assert.Single(dotnet.Events.Items, e => e.Kind == NodeEventKind.Initialized);
            Assert.Equal([node.Id], dotnet.Node.Peers);
            await node.Peer.SendAsync(new { cmd = "state" });
            Assert.Equal([dotnet.Id], (await node.Peer.WaitForAsync(Done("state")))["connections"]!.Values<string>());
            AssertNoLoss(dotnet, node);
        }
    }

    [Fact]
    public async Task A_dial_closed_unanswered_because_the_remote_got_its_own_dial_through_first_returns_that_remotes_id()
    {
        // The interleaving of a simultaneous connect in which a masterless node closes our dial right after our id
        // packet, sending nothing, because its own dial to us already has our answer; played by hand so it happens
        // every time.
        var dotnet = await StartDotNetAsync("dotnet");
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var racerInfo = $"tcp://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        var racer = await DialRawAsync(dotnet);
        await racer.WriteAsync(new JObject { ["id"] = "racer", ["info"] = racerInfo }.ToString(Newtonsoft.Json.Formatting.None) + "\r\n");
        Assert.Equal("{\"id\":\"dotnet\",\"uhura\":1}", await racer.ReadPacketAsync()); // the mark Node ignores

        var connecting = dotnet.Node.ConnectAsync(racerInfo);
        var ours = RawMasterless.Wrap(await listener.AcceptSocketAsync().WaitAsync(Wait.Timeout));
        _raws.Add(ours);
        Assert.Equal(new JObject { ["id"] = "dotnet", ["info"] = dotnet.Info, ["uhura"] = 1 }.ToString(Newtonsoft.Json.Formatting.None), await ours.ReadPacketAsync());
        await ours.DisposeAsync();

        await racer.WriteAsync("{\"priority\":1}\r\n");
        Assert.Equal("{\"confirm\":true}", await racer.ReadPacketAsync());
        Assert.Equal("racer", await connecting.For());
        // The link came in unkept; ConnectAsync keeps it afterwards.
        Assert.Equal("[false]", await racer.ReadPacketAsync());
        Assert.Equal("[true]", await racer.ReadPacketAsync());
        Assert.Equal(["racer"], dotnet.Node.Peers);
        Assert.True(dotnet.Node.Send("racer", new { over = "the surviving link" }));
        Assert.Equal("{\"over\":\"the surviving link\"}", await racer.ReadPacketAsync());
    }

    [Fact]
    public async Task A_connection_neither_side_keeps_ends_on_both_sides_right_after_the_handshake_whoever_dialled()
    {
        var dotnet = await StartDotNetAsync("dotnet");
        var node = await StartNodeAsync("node");

        // .NET dials without keeping; the Node node never keeps: [false] both ways.
        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info, keep: false).For());
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("connect")))["id"]);
        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == node.Id);
        Assert.Null(gone.Error);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("disconnect")))["id"]);
        Assert.Empty(dotnet.Node.Peers);

        // The Node node dials; the .NET node (incoming) does not keep by default.
        await node.Peer.SendAsync(new { cmd = "connect", uri = dotnet.Info });
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("connectResult")))["remoteId"]);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("connect")))["id"]);
        var again = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Initialized && e.PeerId == node.Id, occurrence: 2);
        Assert.Equal(node.Info, again.Info);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("disconnect")))["id"]);
        Assert.Null((await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == node.Id, occurrence: 2)).Error);
        Assert.Empty(dotnet.Node.Peers);
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind is NodeEventKind.Backoff or NodeEventKind.Reconnect);
    }

    [Fact]
    public async Task One_keeping_side_holds_the_connection_and_dropping_that_keep_later_ends_it_on_both_sides()
    {
        var dotnet = await StartDotNetAsync("dotnet");
        var node = await StartNodeAsync("node");

        // The Node node keeps, the .NET node does not: held. A packet sent after each side's connect follows its
        // keep flag on the wire, so once both packets arrived both flags were read.
        await node.Peer.SendAsync(new { cmd = "keep", id = dotnet.Id });
        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info, keep: false).For());
        await node.Peer.WaitForAsync(Is("connect"));
        await AssertPacketsCrossAsync(dotnet, node, new JObject { ["held"] = "by node" });
        Assert.Equal([node.Id], dotnet.Node.Peers);

        // The Node node stops keeping: its [false] reaches a .NET node that does not keep either, which ends the link.
        await node.Peer.SendAsync(new { cmd = "keep", id = dotnet.Id, value = false });
        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == node.Id);
        Assert.Null(gone.Error);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("disconnect")))["id"]);
        Assert.Empty(dotnet.Node.Peers);

        // Now the .NET node keeps (ConnectAsync's default) and the Node node does not: held.
        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info).For());
        await node.Peer.WaitForAsync(Is("connect"));
        await AssertPacketsCrossAsync(dotnet, node, new JObject { ["held"] = "by dotnet" });
        Assert.Equal([node.Id], dotnet.Node.Peers);
        await node.Peer.SendAsync(new { cmd = "state" });
        Assert.Equal([dotnet.Id], (await node.Peer.WaitForAsync(Done("state")))["connections"]!.Values<string>());

        // Keep(id, false) while the remote does not keep: both sides drop it.
        dotnet.Node.Keep(node.Id, false);
        Assert.Null((await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == node.Id, occurrence: 2)).Error);
        Assert.Equal(dotnet.Id, (string?)(await node.Peer.WaitForAsync(Is("disconnect")))["id"]);
        Assert.Empty(dotnet.Node.Peers);
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind is NodeEventKind.Backoff or NodeEventKind.Reconnect);
    }

    [Fact]
    public async Task Heartbeats_keep_an_idle_link_to_a_node_node_past_the_peer_timeout_while_a_silent_peer_is_dropped()
    {
        var peerTimeout = TimeSpan.FromSeconds(3);
        var dotnet = await StartDotNetAsync("dotnet", Masterless with { PeerTimeout = peerTimeout });
        var node = await StartNodeAsync("node");
        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info).For());
        var idleSince = Stopwatch.StartNew();
        await node.Peer.WaitForAsync(Is("connect"));

        // A raw peer dials, shakes hands, and sees the .NET node's heartbeat on the wire about a second later.
        // Its first heartbeat comes a HeartbeatInterval after its last write, the keep flag written at the handshake.
        var raw = await DialRawAsync(dotnet);
        var sinceHandshake = Stopwatch.StartNew();
        await raw.HandshakeAsync("raw", dotnet.Id);
        Assert.Equal("[false]", await raw.ReadPacketAsync());
        Assert.Equal("true", await raw.ReadPacketAsync());
        Assert.InRange(sinceHandshake.Elapsed, Masterless.HeartbeatInterval - TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(4));

        // It answers with one heartbeat of its own (which counts as life), then stays silent: PeerTimeout later it is dropped.
        await raw.WriteAsync("true\r\n");
        var silentSince = Stopwatch.StartNew();
        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == "raw");
        Assert.IsType<PeerLostException>(gone.Error);
        Assert.True(silentSince.Elapsed >= peerTimeout - TimeSpan.FromMilliseconds(100), $"dropped after {silentSince.Elapsed}");
        await raw.ReadToEndAsync();

        // Meanwhile the Node link carried nothing but heartbeats for longer than the timeout, and is still up.
        Assert.True(idleSince.Elapsed > peerTimeout, $"idle for {idleSince.Elapsed}");
        Assert.Equal([node.Id], dotnet.Node.Peers);
        Assert.DoesNotContain(dotnet.Events.Items, e => e.PeerId == node.Id && e.Kind is NodeEventKind.Disconnect or NodeEventKind.PeerGone);
        await AssertPacketsCrossAsync(dotnet, node, new JObject { ["after"] = "idle" });
        AssertNoLoss(dotnet, node);
    }

    [Fact]
    public async Task A_killed_node_node_is_dialled_again_with_backoff_found_again_under_the_same_id_and_given_up_for_another_id()
    {
        var dotnet = await StartDotNetAsync("dotnet", Masterless with { Reconnect = ReconnectOptions.Fixed(TimeSpan.FromMilliseconds(100)) });
        var first = await StartNodeAsync("node");

        // The Node node dials; the .NET node keeps it, so it redials the address the id packet announced.
        dotnet.Node.Keep(first.Id);
        await first.Peer.SendAsync(new { cmd = "connect", uri = dotnet.Info });
        await dotnet.Node.WhenConnectedAsync(first.Id).For();
        await AssertPacketsCrossAsync(dotnet, first, new JObject { ["life"] = 1 });

        await first.Peer.KillAsync();
        var lost = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Disconnect && e.PeerId == first.Id);
        Assert.NotNull(lost.Error);
        var backoff = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Backoff && e.PeerId == first.Id);
        Assert.NotNull(backoff.Error); // the refused dial
        Assert.Equal(1, backoff.Attempt);
        Assert.Empty(dotnet.Node.Peers);
        // Packets wait for the peer while it is being redialled.
        Assert.True(dotnet.Node.Send(first.Id, new JObject { ["queued"] = "while down" }));

        // The same id comes back on the same port: redialled, reconnected, the queued packet delivered.
        var second = await StartNodeAsync(first.Id, first.Port);
        var back = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Initialized && e.PeerId == first.Id && e.IsReconnect);
        Assert.Equal(first.Info, back.Info);
        await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Reconnect && e.PeerId == first.Id);
        var connect = await second.Peer.WaitForAsync(Is("connect"));
        Assert.Equal(dotnet.Id, (string?)connect["id"]);
        var queued = await second.Peer.WaitForAsync(Is("message"));
        Assert.Equal("while down", (string?)queued["packet"]?["queued"]);
        await AssertPacketsCrossAsync(dotnet, second, new JObject { ["life"] = 2 });
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind == NodeEventKind.PeerGone);

        // Killed again, and another node id takes the port: the .NET node gives up on the old id.
        await second.Peer.KillAsync();
        await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.Disconnect && e.PeerId == first.Id, occurrence: 2);
        await StartNodeAsync("other", first.Port);
        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == first.Id);
        var refused = Assert.IsType<PeerRefusedException>(gone.Error);
        Assert.Equal(PeerRefusal.UnexpectedNode, refused.Reason);
        Assert.Empty(dotnet.Node.Peers);
        Assert.False(dotnet.Node.Send(first.Id, new { lost = true }));
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind == NodeEventKind.Initialized && e.PeerId == "other");
    }

    [Fact]
    public async Task Bad_input_from_a_raw_socket_closes_only_that_link_while_the_node_keeps_serving_a_node_peer()
    {
        var dotnet = await StartDotNetAsync("dotnet", Masterless with { MaxPacketSize = 1024 });
        var node = await StartNodeAsync("node");
        Assert.Equal(node.Id, await dotnet.Node.ConnectAsync(node.Info).For());
        await node.Peer.WaitForAsync(Is("connect"));

        // During the handshake: the link is closed with nothing sent back, and no peer is ever known.
        await AssertRefusedInHandshakeAsync(dotnet, node, "{nope}\r\n");
        await AssertRefusedInHandshakeAsync(dotnet, node, """{"info":"tcp://127.0.0.1:9"}""" + "\r\n");
        await AssertRefusedInHandshakeAsync(dotnet, node, """{"id":"no-info"}""" + "\r\n");
        await AssertRefusedInHandshakeAsync(dotnet, node, "null\r\n");
        await AssertRefusedInHandshakeAsync(dotnet, node, new string('x', 70 * 1024));

        // After the handshake: the peer is dropped with the reason.
        await AssertDroppedAfterHandshakeAsync<DecodeException>(dotnet, node, "bad-json", """{"a":}""" + "\r\n");
        await AssertDroppedAfterHandshakeAsync<DecodeException>(dotnet, node, "lf-only", "{\"a\":1}\n{\"b\":2}\r\n");
        await AssertDroppedAfterHandshakeAsync<PeerLostException>(dotnet, node, "null-packet", "null\r\n");
        await AssertDroppedAfterHandshakeAsync<FrameTooLargeException>(dotnet, node, "too-large", $$"""{"big":"{{new string('x', 2000)}}"}""" + "\r\n");
        await AssertDroppedAfterHandshakeAsync<FrameTooLargeException>(dotnet, node, "too-large-unterminated", "{\"big\":\"" + new string('x', 4000));

        Assert.Equal([node.Id], dotnet.Node.Peers);
        AssertNoLoss(dotnet, node);
    }

    [Fact]
    public async Task A_peer_that_resets_the_connection_in_the_middle_of_a_large_write_is_dropped_and_the_node_still_closes_promptly()
    {
        var dotnet = await StartDotNetAsync("dotnet");
        var raw = await DialRawAsync(dotnet, receiveBuffer: 4096);
        await raw.HandshakeAsync("resetter", dotnet.Id);
        Assert.Equal("[false]", await raw.ReadPacketAsync());
        await dotnet.Node.WhenConnectedAsync("resetter").For();

        // 8 MB that a peer reading nothing cannot take in: the node's write is still under way when the peer resets.
        Assert.True(dotnet.Node.Send("resetter", new JObject { ["big"] = new string('x', 8 << 20) }));
        // A heartbeat may come first when the machine is slow (a second since the keep flag): skip it.
        var first = await raw.ReadSomeAsync();
        while (first.Replace("true\r\n", string.Empty, StringComparison.Ordinal).Length == 0)
        {
            first = await raw.ReadSomeAsync();
        }

        Assert.StartsWith("{\"big\":\"xxx", first.Replace("true\r\n", string.Empty, StringComparison.Ordinal));
        raw.Reset();

        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == "resetter");
        Assert.NotNull(gone.Error);
        Assert.Empty(dotnet.Node.Peers);
        await dotnet.Node.CloseAsync().WaitAsync(TimeSpan.FromSeconds(5));
    }

    private async Task AssertRefusedInHandshakeAsync(DotNetNode dotnet, MasterlessProcess node, string bytes)
    {
        var raw = await DialRawAsync(dotnet);
        await raw.TryWriteAsync(bytes);
        Assert.Equal(string.Empty, await raw.ReadToEndAsync());
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind == NodeEventKind.Initialized && e.PeerId != node.Id);
        await AssertPacketsCrossAsync(dotnet, node, new JObject { ["after"] = bytes.Length > 40 ? bytes[..40] : bytes });
    }

    private async Task AssertDroppedAfterHandshakeAsync<TError>(DotNetNode dotnet, MasterlessProcess node, string id, string bytes)
        where TError : Exception
    {
        var raw = await DialRawAsync(dotnet);
        await raw.HandshakeAsync(id, dotnet.Id);
        Assert.Equal("[false]", await raw.ReadPacketAsync());
        await dotnet.Node.WhenConnectedAsync(id).For();
        await raw.TryWriteAsync(bytes);
        var gone = await dotnet.Events.WaitAsync(e => e.Kind == NodeEventKind.PeerGone && e.PeerId == id);
        Assert.IsAssignableFrom<TError>(gone.Error);
        await raw.ReadToEndAsync();
        Assert.DoesNotContain(id, dotnet.Node.Peers);
        await AssertPacketsCrossAsync(dotnet, node, new JObject { ["after"] = id });
    }

    /// <summary>A packet from the .NET node reaches the Node node and one from the Node node reaches the .NET node, intact.</summary>
    private static async Task AssertPacketsCrossAsync(DotNetNode dotnet, MasterlessProcess node, JObject packet)
    {
        var fromNode = new JObject { ["from"] = "node", ["body"] = packet.DeepClone() };
        var fromDotnet = new JObject { ["from"] = "dotnet", ["body"] = packet.DeepClone() };
        Assert.True(dotnet.Node.Send(node.Id, fromDotnet));
        await node.Peer.SendAsync(new { cmd = "send", to = dotnet.Id, packet = fromNode });
        Assert.True((bool?)(await node.Peer.WaitForAsync(Done("send")))["result"]);

        var atNode = await node.Peer.WaitForAsync(line => Type(line) == "message" && JToken.DeepEquals(fromDotnet, line["packet"]));
        Assert.Equal(dotnet.Id, (string?)atNode["from"]);
        var atDotnet = await dotnet.Messages.WaitAsync(m => m.SenderId == node.Id && JToken.DeepEquals(fromNode, m.Packet));
        Assert.Equal(node.Id, atDotnet.SenderId);
    }

    private static void AssertNoLoss(DotNetNode dotnet, params MasterlessProcess[] nodes)
    {
        Assert.DoesNotContain(dotnet.Events.Items, e => e.Kind is NodeEventKind.Disconnect or NodeEventKind.PeerGone or NodeEventKind.Backoff && e.PeerId is { } id && nodes.Any(n => n.Id == id));
        foreach (var node in nodes)
        {
            Assert.DoesNotContain(node.Peer.Received, line => Type(line) is "disconnect" or "error");
        }
    }

    private static int CountMessages(NodePeer peer, string? from = null)
        => peer.Received.Count(line => Type(line) == "message" && (from is null || (string?)line["from"] == from));

    private async Task<DotNetNode> StartDotNetAsync(string id, UhuraNodeOptions? options = null)
    {
        var node = new UhuraNode((options ?? Masterless) with { NodeId = id });
        _nodes.Add(node);
        var events = new Recorder<NodeEvent>();
        var messages = new Recorder<MeshMessage>();
        node.NodeEvents.Subscribe(events);
        node.Messages.Subscribe(messages);
        var info = await node.ListenAsync("tcp://127.0.0.1:0").For();
        return new DotNetNode(node, events, messages, new Uri(info).Port);
    }

    private async Task<MasterlessProcess> StartNodeAsync(string id, int port = 0)
    {
        var peer = await NodePeer.StartAsync("masterless-node.js", id, "127.0.0.1", port.ToString(CultureInfo.InvariantCulture));
        _processes.Add(peer);
        var listening = await peer.WaitForAsync(Is("listening"));
        var info = (string)listening["info"]!;
        Assert.Equal($"tcp://127.0.0.1:{(int)listening["port"]!}", info);
        return new MasterlessProcess(peer, id, info, (int)listening["port"]!);
    }

    private async Task<RawMasterless> DialRawAsync(DotNetNode dotnet, int? receiveBuffer = null)
    {
        var raw = await RawMasterless.ConnectAsync(dotnet.Port, receiveBuffer);
        _raws.Add(raw);
        return raw;
    }

    /// <summary>Established TCP connections between two local listening ports, counted at their dialling ends.</summary>
    private static int EstablishedBetween(int port, int otherPort)
        => IPGlobalProperties.GetIPGlobalProperties().GetActiveTcpConnections().Count(c =>
            c.State == TcpState.Established && IPAddress.IsLoopback(c.RemoteEndPoint.Address)
            && (c.RemoteEndPoint.Port == port || c.RemoteEndPoint.Port == otherPort));

    /// <summary>Polls a condition nothing signals (the operating system's connection table) until it holds, for up to <see cref="Wait.Timeout"/>.</summary>
    private static async Task EventuallyAsync(Func<bool> condition, Func<string> describe)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > Wait.Timeout)
            {
                Assert.Fail("Timed out waiting for " + describe());
            }

            await Task.Delay(20);
        }
    }

    private static Func<JObject, bool> Is(string type) => line => Type(line) == type;

    private static Func<JObject, bool> Done(string cmd) => line => Type(line) == "done" && (string?)line["cmd"] == cmd;

    private static string? Type(JObject line) => (string?)line["type"];

    private sealed record DotNetNode(UhuraNode Node, Recorder<NodeEvent> Events, Recorder<MeshMessage> Messages, int Port)
    {
        public string Id => Node.Id;

        public string Info => Node.Info!;
    }

    private sealed record MasterlessProcess(NodePeer Peer, string Id, string Info, int Port);

    /// <summary>Everything a stream produced, as a list and replayed to every later wait.</summary>
    private sealed class Recorder<T> : IObserver<T>
    {
        private readonly ReplaySubject<T> _replay = new();
        private readonly List<T> _items = [];

        public IReadOnlyList<T> Items
        {
            get
            {
                lock (_items)
                {
                    return [.. _items];
                }
            }
        }

        /// <summary>The <paramref name="occurrence"/>th item (since the start) that matches, waiting up to <see cref="Wait.Timeout"/>.</summary>
        public Task<T> WaitAsync(Func<T, bool> predicate, int occurrence = 1) => Wait.First(_replay.Where(predicate).Skip(occurrence - 1));

        public void OnNext(T value)
        {
            lock (_items)
            {
                _items.Add(value);
            }

            _replay.OnNext(value);
        }

        public void OnError(Exception error) => _replay.OnError(error);

        public void OnCompleted() => _replay.OnCompleted();
    }

    /// <summary>A bare TCP socket speaking masterless framing by hand: packets are text lines ended by CRLF.</summary>
    private sealed class RawMasterless : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly List<byte> _pending = [];
        private readonly byte[] _buffer = new byte[16 * 1024];

        private RawMasterless(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static RawMasterless Wrap(Socket accepted) => new(accepted);

        public static async Task<RawMasterless> ConnectAsync(int port, int? receiveBuffer = null)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            if (receiveBuffer is { } size)
            {
                socket.ReceiveBufferSize = size; // before connecting, so the window is small from the start
            }

            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            return new RawMasterless(socket);
        }

        public Task WriteAsync(string text) => _stream.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask();

        /// <summary>Writes, ignoring a reset: the node may already have closed the link on the first bad bytes.</summary>
        public async Task TryWriteAsync(string text)
        {
            try
            {
                await WriteAsync(text);
            }
            catch (IOException)
            {
            }
        }

        /// <summary>The outgoing side of the handshake, priority 1: id and info, the answer, the priority, the confirmation.</summary>
        public async Task HandshakeAsync(string id, string expectedRemoteId)
        {
            await WriteAsync(new JObject { ["id"] = id, ["info"] = "tcp://127.0.0.1:9" }.ToString(Newtonsoft.Json.Formatting.None) + "\r\n");
            Assert.Equal(new JObject { ["id"] = expectedRemoteId, ["uhura"] = 1 }.ToString(Newtonsoft.Json.Formatting.None), await ReadPacketAsync());
            await WriteAsync("{\"priority\":1}\r\n");
            Assert.Equal("{\"confirm\":true}", await ReadPacketAsync());
        }

        /// <summary>The next packet's text without its CRLF.</summary>
        public async Task<string> ReadPacketAsync()
        {
            using var timeout = new CancellationTokenSource(Wait.Timeout);
            while (true)
            {
                var end = IndexOfCrLf();
                if (end >= 0)
                {
                    var text = Encoding.UTF8.GetString([.. _pending.Take(end)]);
                    _pending.RemoveRange(0, end + 2);
                    return text;
                }

                var n = await _stream.ReadAsync(_buffer, timeout.Token);
                if (n == 0)
                {
                    throw new EndOfStreamException($"Closed before a whole packet arrived; pending: {Encoding.UTF8.GetString([.. _pending])}");
                }

                _pending.AddRange(_buffer.AsSpan(0, n).ToArray());
            }
        }

        /// <summary>What one read returns (after anything already buffered): the start of a large packet.</summary>
        public async Task<string> ReadSomeAsync()
        {
            if (_pending.Count == 0)
            {
                using var timeout = new CancellationTokenSource(Wait.Timeout);
                var n = await _stream.ReadAsync(_buffer, timeout.Token);
                _pending.AddRange(_buffer.AsSpan(0, n).ToArray());
            }

            var text = Encoding.UTF8.GetString([.. _pending]);
            _pending.Clear();
            return text;
        }

        /// <summary>Closes with a reset (linger 0), dropping whatever was not read.</summary>
        public void Reset() => _socket.Close(0);

        /// <summary>Everything not read yet until the node closes the link (FIN or reset), for up to <see cref="Wait.Timeout"/>.</summary>
        public async Task<string> ReadToEndAsync()
        {
            using var timeout = new CancellationTokenSource(Wait.Timeout);
            while (true)
            {
                int n;
                try
                {
                    n = await _stream.ReadAsync(_buffer, timeout.Token);
                }
                catch (IOException)
                {
                    n = 0;
                }

                if (n == 0)
                {
                    var rest = Encoding.UTF8.GetString([.. _pending]);
                    _pending.Clear();
                    return rest;
                }

                _pending.AddRange(_buffer.AsSpan(0, n).ToArray());
            }
        }

        public ValueTask DisposeAsync()
        {
            _socket.Dispose();
            return ValueTask.CompletedTask;
        }

        private int IndexOfCrLf()
        {
            for (var i = 0; i + 1 < _pending.Count; i++)
            {
                if (_pending[i] == '\r' && _pending[i + 1] == '\n')
                {
                    return i;
                }
            }

            return -1;
        }
    }
}
