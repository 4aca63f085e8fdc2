using System.Text;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The smallest inputs of the bugs the fuzz tests found, each now a typed error.</summary>
public class FuzzRegressionTests
{
    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    [Theory]
    [InlineData("[\"\\ud800\"]")]
    [InlineData("[\"\\udc00x\",1]")]
    [InlineData("{\"args\":[\"\\ud83d\"]}")]
    [InlineData("{\"args\":[\"ping\"],\"id\":\"\\udc00\"}")]
    [InlineData("{\"\\udc00\":1,\"args\":[\"ping\"]}")]
    public void A_node_wire_name_id_or_key_escaping_an_unpaired_surrogate_is_a_decode_error(string element)
        => Assert.Throws<DecodeException>(() => NodeElementScanner.Scan(Bytes(element), 64, new Utf8NameCache()));

    [Theory]
    [InlineData("{\"topic\":\"\\ud800\"}")]
    [InlineData("{\"topic\":\"\\udc00x\",\"message\":1}")]
    [InlineData("{\"\\ud800\":1,\"topic\":\"a\"}")]
    public void A_socket_ipc_topic_or_key_escaping_an_unpaired_surrogate_is_a_decode_error(string frame)
        => Assert.Throws<DecodeException>(() => SocketIpcCodec.Scan(Bytes(frame), 64, new Utf8NameCache()));

    [Fact]
    public void A_paired_surrogate_escape_is_still_a_name()
        => Assert.Equal("👋", NodeElementScanner.Scan(Bytes("[\"\\ud83d\\udc4b\"]"), 64, new Utf8NameCache()).Name);
}
