using System.Buffers;
using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

public class NodeWireCodecTests
{
    private static readonly JsonSerializer Serializer = JsonSerializer.CreateDefault();

    [Fact]
    public void A_payload_is_the_event_name_followed_by_the_arguments()
    {
        var payload = NodeWireCodec.EncodePayload("ping", [1, "two", new { x = 3 }, null, JToken.Parse("[true]")], Serializer);
        Assert.Equal("[\"ping\",1,\"two\",{\"x\":3},null,[true]]", Encoding.UTF8.GetString(payload));
    }

    [Fact]
    public void Non_ascii_text_is_encoded_as_utf8()
    {
        var payload = NodeWireCodec.EncodePayload("é", ["日本 😀"], Serializer);
        Assert.Equal("[\"é\",\"日本 😀\"]", Encoding.UTF8.GetString(payload));
    }

    [Fact]
    public void The_object_form_wraps_the_payload_with_an_id()
    {
        using var output = new PooledBufferWriter();
        NodeWireCodec.WriteObject(output, "[\"a\"]"u8, "k7-"u8, 42);
        Assert.Equal("{\"args\":[\"a\"],\"id\":\"k7-42\"}", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void An_ack_echoes_the_peer_id_escaped()
    {
        using var output = new PooledBufferWriter();
        NodeWireCodec.WriteAck(output, "a\"b");
        var token = JToken.Parse(Encoding.UTF8.GetString(output.WrittenSpan));
        Assert.Equal("ack::a\"b", (string)token["args"]![0]!);
    }

    [Fact]
    public void Malformed_json_is_a_decode_error_with_the_raw_data()
    {
        var error = Assert.Throws<DecodeException>(() => NodeWireCodec.Parse(new ReadOnlySequence<byte>("[\"a\",tru]"u8.ToArray()), 64));
        Assert.Equal("[\"a\",tru]", error.RawData);
    }

    [Fact]
    public void Strings_that_look_like_dates_stay_strings()
    {
        var token = NodeWireCodec.Parse(new ReadOnlySequence<byte>("[\"a\",\"2024-01-01T00:00:00Z\"]"u8.ToArray()), 64);
        Assert.Equal(JTokenType.String, token[1]!.Type);
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_a_decode_error()
    {
        var deep = new string('[', 100) + new string(']', 100);
        Assert.Throws<DecodeException>(() => NodeWireCodec.Parse(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(deep)), 64));
    }

    [Fact]
    public void Invalid_utf8_is_a_decode_error()
        => Assert.Throws<DecodeException>(() => NodeWireCodec.Parse(new ReadOnlySequence<byte>([(byte)'[', (byte)'"', 0xff, (byte)'"', (byte)']']), 64));
}
