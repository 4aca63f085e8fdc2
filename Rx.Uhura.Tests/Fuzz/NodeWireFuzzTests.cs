using System.Buffers;
using System.Text;
using Newtonsoft.Json.Linq;
using Rx.Uhura.Internal;
using Rx.Uhura.Protocol;
using Xunit.Abstractions;

namespace Rx.Uhura.Tests.Fuzz;

/// <summary>The Node uhura wire's decoders (framer, element scanner, parser, argument reader), fuzzed as the read loop calls them.</summary>
public class NodeWireFuzzTests(ITestOutputHelper output)
{
    private const long MaxMessage = 4096;
    private const int MaxDepth = 16;

    [Fact]
    public void Every_mutated_node_wire_stream_ends_in_events_more_data_or_a_typed_error()
        => FuzzHarness.Run("Node uhura wire", Generate, () => new Decoder(), MaxDepth, MaxMessage, output);

    /// <summary>An array of elements: events in both forms, acks, protocol events, some with fields of the wrong type.</summary>
    private static List<byte[]> Generate(Random rng)
    {
        var pieces = new List<byte[]> { Encoding.UTF8.GetBytes(rng.Next(10) == 0 ? " \n[" : "[\n") };
        for (var i = rng.Next(1, 5); i > 0; i--)
        {
            pieces.Add(Encoding.UTF8.GetBytes(Element(rng) + (i > 1 || rng.Next(2) == 0 ? "\n,\n" : "\n]\n")));
        }

        return pieces;
    }

    private static string Element(Random rng)
    {
        var wrong = rng.Next(6) == 0;
        var name = wrong && rng.Next(3) == 0 ? FuzzJson.AnyType(rng) : rng.Next(6) == 0 ? FuzzJson.String(rng) : "\"ping\"";
        var args = new StringBuilder();
        for (var i = rng.Next(4); i > 0; i--)
        {
            args.Append(',').Append(rng.Next(10) == 0 ? FuzzJson.Deep(rng, MaxDepth + rng.Next(-2, 2)) : FuzzJson.Value(rng));
        }

        var array = $"[{name}{args}]";
        return rng.Next(7) switch
        {
            0 => $"{{\"args\":{(wrong ? FuzzJson.AnyType(rng) : array)},\"id\":{(wrong ? FuzzJson.AnyType(rng) : "\"7\"")}}}",
            1 => $"{{\"args\":{array}}}",
            2 => $"{{\"args\":[\"ack::{rng.Next(100)}\"]}}",
            3 => $"[\"_set\",{(wrong ? FuzzJson.AnyType(rng) : "\"k\"")},{FuzzJson.Value(rng)}]",
            4 => $"[\"start\",{(wrong ? FuzzJson.AnyType(rng) : "{\"objectMode\":true,\"enableAcks\":true}")}]",
            _ => array,
        };
    }

    /// <summary>Mirrors <c>Connection.ReadLoopAsync</c> and <c>HandleNodeElement</c>/<c>HandleElement</c> up to dispatch.</summary>
    private sealed class Decoder : IFuzzDecoder
    {
        private readonly JsonArrayFramer _framer = new(MaxMessage);
        private readonly Utf8NameCache _names = new();

        public long MaxBuffered => MaxMessage + 1;

        public long Decoded { get; private set; }

        public long Feed(in ReadOnlySequence<byte> buffered)
        {
            var consumed = buffered.Start;
            var examined = buffered.Start;
            var steps = 0;
            while (_framer.TryParseMessage(buffered.Slice(consumed), ref consumed, ref examined, out var element))
            {
                if (++steps > buffered.Length)
                {
                    throw new FuzzInvariantException($"{steps} elements from {buffered.Length} bytes");
                }

                Handle(element.ToArray());
            }

            return buffered.Slice(buffered.Start, consumed).Length;
        }

        public void End(in ReadOnlySequence<byte> rest)
        {
        }

        private void Handle(byte[] element)
        {
            if (element.Length < 2 || element[0] is not ((byte)'[' or (byte)'{') || element[^1] is not ((byte)']' or (byte)'}'))
            {
                throw new FuzzInvariantException("the framer cut an element that is not an array or object: " + Encoding.UTF8.GetString(element));
            }

            var scan = NodeElementScanner.Scan(element, MaxDepth, _names);
            if (scan.ArrayStart < 0 || scan.ArrayStart + scan.ArrayLength > element.Length || element[scan.ArrayStart] != (byte)'[')
            {
                throw new FuzzInvariantException($"the scanner placed the array at {scan.ArrayStart}+{scan.ArrayLength}");
            }

            if (scan.Name is not { Length: > 0 } name)
            {
                throw new ProtocolException("A message does not start with an event name.");
            }

            Decoded++;
            if (name.StartsWith("ack::", StringComparison.Ordinal))
            {
                return;
            }

            if (name[0] == '_' || name is "start" or "connect" or "invalidateSession")
            {
                // Protocol events are parsed whole, and dispatched on what the parse finds.
                var token = NodeWireCodec.Parse(new ReadOnlySequence<byte>(element), MaxDepth);
                var array = token is JObject obj ? obj["args"] as JArray : token as JArray;
                if (array is null || array.Count == 0 || array[0].Type != JTokenType.String || (string)array[0]! != name)
                {
                    throw new FuzzInvariantException($"the scanner found the name '{name}' but the parser finds {token.ToString(Newtonsoft.Json.Formatting.None)}");
                }

                return;
            }

            // An application event's arguments are read later, by the application: they must read without an error.
            try
            {
                JsonArgs.Parse(element, scan.ArrayStart, scan.ArrayLength, 1, MaxDepth);
            }
            catch (UhuraException ex)
            {
                throw new FuzzInvariantException("the arguments of a validated element cannot be read: " + ex);
            }
        }
    }
}
