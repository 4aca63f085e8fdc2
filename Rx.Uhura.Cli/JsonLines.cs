using System.Text;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Rx.Uhura.Cli;

/// <summary>
/// The machine-readable output: one JSON object per line on stdout, each line written whole and flushed at once,
/// safe to call from any thread.
/// </summary>
internal sealed class JsonLines
{
    private readonly TextWriter _writer;
    private readonly object _gate = new();
    private bool _broken;

    public JsonLines(TextWriter writer)
    {
        _writer = writer;
    }

    /// <summary>Standard output, UTF-8 without BOM, "\n" line ends.</summary>
    public static JsonLines Stdout { get; } = new(new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 4096) { AutoFlush = false, NewLine = "\n" });

    /// <summary>Writes one line: <c>{"type":TYPE, ...fields}</c>.</summary>
    public void Write(string type, params (string Name, JToken? Value)[] fields) => Write(Line(type, fields));

    /// <summary>One line, not written yet: <c>{"type":TYPE, ...fields}</c>.</summary>
    public static JObject Line(string type, params (string Name, JToken? Value)[] fields)
    {
        var line = new JObject { ["type"] = type };
        foreach (var (name, value) in fields)
        {
            line[name] = value ?? JValue.CreateNull();
        }

        return line;
    }

    /// <summary>An <c>event</c> line: <c>{"type":"event","conn":ID,"event":NAME,"args":[...]}</c>.</summary>
    public void Event(UhuraEvent e) => Write(
        "event",
        ("conn", e.Connection?.Id),
        ("event", e.Name),
        ("args", new JArray(e.Args.Select(a => a.DeepClone()))));

    /// <summary>Writes a whole object as one line and flushes it.</summary>
    public void Write(JObject line)
    {
        var text = line.ToString(Formatting.None);
        lock (_gate)
        {
            if (_broken)
            {
                return;
            }

            try
            {
                _writer.Write(text);
                _writer.Write('\n');
                _writer.Flush();
            }
            catch (IOException)
            {
                // The reader went away (broken pipe): nothing more can be reported on stdout.
                _broken = true;
            }
        }
    }
}
