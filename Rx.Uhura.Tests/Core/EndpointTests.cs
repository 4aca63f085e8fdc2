using System.Net;
using System.Net.Sockets;
using Rx.Uhura.Transport;

namespace Rx.Uhura.Tests.Core;

public class EndpointTests
{
    [Theory]
    [InlineData("tcp://127.0.0.1:0")]
    [InlineData("tcp://[::1]:5555")]
    [InlineData("unix:///tmp/a.sock")]
    public void Endpoint_uris_round_trip(string uri) => Assert.Equal(uri, UhuraEndpoint.Format(UhuraEndpoint.Parse(uri)));

    [Fact]
    public void Host_names_become_dns_endpoints()
        => Assert.Equal(new DnsEndPoint("localhost", 80), UhuraEndpoint.Parse("tcp://localhost:80"));

    [Fact]
    public void Unix_paths_become_unix_endpoints()
        => Assert.IsType<UnixDomainSocketEndPoint>(UhuraEndpoint.Parse("unix:///run/x.sock"));

    [Theory]
    [InlineData("")]
    [InlineData("http://x:1")]
    [InlineData("tcp://host")]
    [InlineData("tcp://host:99999")]
    [InlineData("tcp://host:-1")]
    [InlineData("unix://relative/path")]
    [InlineData("unix://")]
    public void Bad_uris_are_format_errors(string uri)
    {
        Assert.Throws<FormatException>(() => UhuraEndpoint.Parse(uri));
        Assert.False(UhuraEndpoint.TryParse(uri, out _));
    }
}
