using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;

namespace Rx.Uhura.Tests.Protocol;

/// <summary>The fast path writes exactly what Newtonsoft.Json writes for the types it handles.</summary>
public class FastJsonWriterTests
{
    private static string Fast(object? value)
    {
        var buffer = new PooledBufferWriter();
        FastJsonWriter.Write(buffer, value);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string Newtonsoft(object? value) => JsonConvert.SerializeObject(value);

    public static TheoryData<object?> Values => new()
    {
        null, true, false, 0, -1, int.MaxValue, int.MinValue, long.MaxValue, long.MinValue, ulong.MaxValue,
        (short)-7, (byte)255, (sbyte)-128, (ushort)65535, uint.MaxValue,
        0.0, -0.0, 1.0, 1.5, -2.25, 0.1, 1e21, 1e-7, double.MaxValue, double.Epsilon, 123456789.125,
        "", "ping", "quote \" backslash \\ slash /", "tab\tnew\nline\rcr\bback\fform", "\u0000\u0001\u001f\u007f",
        "é ü ß € 日本 😀", "\u0085\u2028\u2029", "<script>&'", new string('x', 10_000) + "\n",
    };

    [Theory]
    [MemberData(nameof(Values))]
    public void Writes_what_Newtonsoft_writes(object? value)
    {
        Assert.True(FastJsonWriter.CanWriteAll([value]));
        Assert.Equal(Newtonsoft(value), Fast(value));
    }

    [Fact]
    public void Random_strings_round_trip_through_Newtonsoft()
    {
        var random = new Random(1234);
        for (var i = 0; i < 2_000; i++)
        {
            var chars = new char[random.Next(0, 40)];
            for (var j = 0; j < chars.Length; j++)
            {
                chars[j] = random.Next(4) switch
                {
                    0 => (char)random.Next(0, 0x20),
                    1 => (char)random.Next(0x20, 0x80),
                    2 => (char)random.Next(0x80, 0xD800),
                    _ => (char)random.Next(0xE000, 0x10000),
                };
            }

            var text = new string(chars);
            Assert.Equal(text, JToken.Parse(Fast(text)).Value<string>());
        }
    }

    [Fact]
    public void A_lone_surrogate_becomes_the_replacement_character_as_with_the_serializer_path()
    {
        Assert.Equal("\"a\uFFFDb\"", Fast("a\uD800b"));
    }

    [Fact]
    public void Other_types_and_non_finite_doubles_go_to_the_serializer()
    {
        Assert.False(FastJsonWriter.CanWriteAll([double.NaN]));
        Assert.False(FastJsonWriter.CanWriteAll([1, new { a = 1 }]));
        Assert.False(FastJsonWriter.CanWriteAll([new JArray()]));
        Assert.False(FastJsonWriter.CanWriteAll([1.5f]));
        Assert.True(FastJsonWriter.CanWriteAll([]));
    }

    [Fact]
    public void Encoded_payloads_match_the_serializer_path_for_mixed_arguments()
    {
        var serializer = JsonSerializer.CreateDefault();
        object?[] fast = ["a\"b", 1, -2L, true, null, 2.5];
        var payload = NodeWireCodec.EncodePayload("ev\n", fast, serializer, out var nameEnd);
        Assert.Equal("[\"ev\\n\",\"a\\\"b\",1,-2,true,null,2.5]", Encoding.UTF8.GetString(payload));
        Assert.Equal((byte)',', payload[nameEnd]);
        var slow = NodeWireCodec.EncodePayload("ev\n", [.. fast, new { x = 1 }], serializer, out var slowNameEnd);
        Assert.Equal("[\"ev\\n\",\"a\\\"b\",1,-2,true,null,2.5,{\"x\":1}]", Encoding.UTF8.GetString(slow));
        Assert.Equal(nameEnd, slowNameEnd);
    }

    [Fact]
    public void An_argument_whose_serialization_encodes_another_event_on_the_same_thread_leaves_both_payloads_whole()
    {
        // A converter (or a getter) that sends an event itself, e.g. a log sink built on this library, encodes a payload
        // while the outer one is half written, on the same thread and with the same per-thread buffer.
        var serializer = JsonSerializer.CreateDefault(new JsonSerializerSettings { Converters = [new SendsWhileWritten()] });
        var outer = NodeWireCodec.EncodePayload("outer", [1, new Reentrant(), "tail"], serializer, out var nameEnd);
        Assert.Equal("[\"outer\",1,\"written\",\"tail\"]", Encoding.UTF8.GetString(outer));
        Assert.Equal(8, nameEnd);
        Assert.Equal("[\"inner\",\"x\",{\"deep\":[1,2]}]", SendsWhileWritten.Inner);
    }

    [Fact]
    public void A_serializer_that_throws_midway_leaves_the_next_payload_on_that_thread_whole()
    {
        var serializer = JsonSerializer.CreateDefault(new JsonSerializerSettings { Converters = [new ThrowsWhileWritten()] });
        Assert.Throws<NullReferenceException>(() => NodeWireCodec.EncodePayload("bad", ["before", new Reentrant()], serializer, out _));
        var next = NodeWireCodec.EncodePayload("good", ["é", new { a = 1 }], serializer, out _);
        Assert.Equal("[\"good\",\"é\",{\"a\":1}]", Encoding.UTF8.GetString(next));
    }

    private sealed class Reentrant;

    private sealed class SendsWhileWritten : JsonConverter<Reentrant>
    {
        public static string? Inner { get; private set; }

        public override void WriteJson(JsonWriter writer, Reentrant? value, JsonSerializer serializer)
        {
            Inner = Encoding.UTF8.GetString(NodeWireCodec.EncodePayload("inner", ["x", new { deep = new[] { 1, 2 } }], JsonSerializer.CreateDefault(), out _));
            writer.WriteValue("written");
        }

        public override Reentrant ReadJson(JsonReader reader, Type objectType, Reentrant? existingValue, bool hasExistingValue, JsonSerializer serializer)
            => throw new NotSupportedException();
    }

    private sealed class ThrowsWhileWritten : JsonConverter<Reentrant>
    {
        public override void WriteJson(JsonWriter writer, Reentrant? value, JsonSerializer serializer)
        {
            writer.WriteStartObject();
            writer.WritePropertyName("half");
            throw new NullReferenceException("a user's converter failed");
        }

        public override Reentrant ReadJson(JsonReader reader, Type objectType, Reentrant? existingValue, bool hasExistingValue, JsonSerializer serializer)
            => throw new NotSupportedException();
    }
}
