package civis.interop;

import eu.europa.esig.dss.detailedreport.DetailedReport;
import eu.europa.esig.dss.detailedreport.jaxb.XmlBasicBuildingBlocks;
import eu.europa.esig.dss.detailedreport.jaxb.XmlConclusion;
import eu.europa.esig.dss.detailedreport.jaxb.XmlConstraint;
import eu.europa.esig.dss.detailedreport.jaxb.XmlConstraintsConclusion;
import eu.europa.esig.dss.detailedreport.jaxb.XmlStatus;
import eu.europa.esig.dss.diagnostic.SignatureWrapper;
import eu.europa.esig.dss.diagnostic.jaxb.XmlDigestMatcher;
import eu.europa.esig.dss.jaxb.object.Message;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.spi.DSSUtils;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.spi.x509.CommonTrustedCertificateSource;
import eu.europa.esig.dss.spi.x509.revocation.crl.ExternalResourcesCRLSource;
import eu.europa.esig.dss.validation.SignedDocumentValidator;
import eu.europa.esig.dss.validation.reports.Reports;
import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Validates one signature file over one detached document with the EU DSS library, offline,
 * trusting only the given CA, and prints one JSON object on stdout:
 *
 * <pre>{"signatures": [{"id", "format", "indication", "subIndication", "checks": {...},
 *   "blocks": {"FC": "PASSED", ...}, "failed": ["ISC: ...", ...], "errors": [...], ...}]}</pre>
 *
 * Usage: {@code DssValidate SIGNATURE DOCUMENT CA.pem [CRL.der]}. The document's file name is
 * the one DSS matches against a JAdES {@code sigD} (ObjectIdByURIHash). The CRL, when given, is
 * the only revocation data DSS sees; without it DSS has none. Exit status 0 when DSS produced a
 * report (whatever it says), 2 on wrong usage.
 */
public final class DssValidate {

  public static void main(String[] args) {
    if (args.length != 3 && args.length != 4) {
      System.err.println("usage: DssValidate SIGNATURE DOCUMENT CA.pem [CRL.der]");
      System.exit(2);
    }
    SignedDocumentValidator validator =
        SignedDocumentValidator.fromDocument(new FileDocument(args[0]));
    validator.setDetachedContents(List.of(new FileDocument(args[1])));
    CommonCertificateVerifier verifier = offlineVerifierTrusting(new File(args[2]));
    if (args.length == 4) {
      verifier.setCrlSource(new ExternalResourcesCRLSource(new FileDocument(args[3])));
    }
    validator.setCertificateVerifier(verifier);
    Reports reports = validator.validateDocument();

    SimpleReport simple = reports.getSimpleReport();
    List<String> signatures = new ArrayList<>();
    for (String id : simple.getSignatureIdList()) {
      signatures.add(json(signature(id, reports)));
    }
    System.out.println("{\"signatures\":[" + String.join(",", signatures) + "]}");
  }

  /** The CA as the only trust anchor; no AIA, OCSP or CRL fetching. */
  private static CommonCertificateVerifier offlineVerifierTrusting(File caPem) {
    CommonTrustedCertificateSource trusted = new CommonTrustedCertificateSource();
    trusted.addCertificate(DSSUtils.loadCertificate(caPem));
    CommonCertificateVerifier verifier = new CommonCertificateVerifier();
    verifier.setTrustedCertSources(trusted);
    verifier.setAIASource(null);
    verifier.setOcspSource(null);
    verifier.setCrlSource(null);
    return verifier;
  }

  private static Map<String, Object> signature(String id, Reports reports) {
    SimpleReport simple = reports.getSimpleReport();
    SignatureWrapper sig = reports.getDiagnosticData().getSignatureById(id);
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("id", id);
    out.put("format", simple.getSignatureFormat(id));
    out.put("indication", simple.getIndication(id));
    out.put("subIndication", simple.getSubIndication(id));

    // Facts from the diagnostic data: what DSS established before applying its policy.
    Map<String, Object> checks = new LinkedHashMap<>();
    checks.put("signatureIntact", sig.isSignatureIntact());
    checks.put("signatureValid", sig.isSignatureValid());
    boolean found = !sig.getDigestMatchers().isEmpty();
    boolean intact = found;
    for (XmlDigestMatcher m : sig.getDigestMatchers()) {
      found &= m.isDataFound();
      intact &= m.isDataIntact();
    }
    checks.put("referenceDataFound", found);
    checks.put("referenceDataIntact", intact);
    checks.put("signingCertificateIdentified", sig.isSigningCertificateIdentified());
    checks.put("signingCertificateReferencePresent", sig.isSigningCertificateReferencePresent());
    checks.put("trustedChain", sig.isTrustedChain());
    out.put("checks", checks);

    // The basic building blocks of ETSI EN 319 102-1 §5.2 and every constraint that did not pass.
    DetailedReport detailed = reports.getDetailedReport();
    XmlBasicBuildingBlocks bbb = detailed.getBasicBuildingBlockById(id);
    Map<String, Object> blocks = new LinkedHashMap<>();
    List<String> failed = new ArrayList<>();
    block("FC", bbb.getFC(), blocks, failed);
    block("ISC", bbb.getISC(), blocks, failed);
    block("VCI", bbb.getVCI(), blocks, failed);
    block("XCV", bbb.getXCV(), blocks, failed);
    block("CV", bbb.getCV(), blocks, failed);
    block("SAV", bbb.getSAV(), blocks, failed);
    out.put("blocks", blocks);
    out.put("failed", failed);

    out.put("errors", texts(simple.getAdESValidationErrors(id)));
    out.put("warnings", texts(simple.getAdESValidationWarnings(id)));
    out.put("infos", texts(simple.getAdESValidationInfo(id)));
    return out;
  }

  private static void block(
      String name, XmlConstraintsConclusion block, Map<String, Object> blocks, List<String> failed) {
    if (block == null) {
      return;
    }
    XmlConclusion conclusion = block.getConclusion();
    String verdict = String.valueOf(conclusion.getIndication());
    if (conclusion.getSubIndication() != null) {
      verdict += "/" + conclusion.getSubIndication();
    }
    blocks.put(name, verdict);
    for (XmlConstraint c : block.getConstraint()) {
      if (c.getStatus() != XmlStatus.OK && c.getStatus() != XmlStatus.IGNORED) {
        String why = c.getError() != null ? c.getError().getValue()
            : c.getWarning() != null ? c.getWarning().getValue()
            : c.getInfo() != null ? c.getInfo().getValue() : "";
        failed.add(name + " " + c.getStatus() + ": " + c.getName().getValue() + " " + why);
      }
    }
  }

  private static List<String> texts(List<Message> messages) {
    List<String> out = new ArrayList<>();
    for (Message m : messages) {
      out.add(m.getValue());
    }
    return out;
  }

  /** Enough JSON for null, strings (and enums as their names), booleans, lists and maps. */
  private static String json(Object value) {
    if (value == null || value instanceof Boolean) {
      return String.valueOf(value);
    }
    if (value instanceof Enum<?> e) {
      return json(e.toString());
    }
    if (value instanceof Map<?, ?> map) {
      List<String> fields = new ArrayList<>();
      map.forEach((k, v) -> fields.add(json(k) + ":" + json(v)));
      return "{" + String.join(",", fields) + "}";
    }
    if (value instanceof List<?> list) {
      List<String> items = new ArrayList<>();
      list.forEach(v -> items.add(json(v)));
      return "[" + String.join(",", items) + "]";
    }
    StringBuilder s = new StringBuilder("\"");
    for (char c : String.valueOf(value).toCharArray()) {
      if (c == '"' || c == '\\') {
        s.append('\\').append(c);
      } else if (c < 0x20) {
        s.append(String.format("\\u%04x", (int) c));
      } else {
        s.append(c);
      }
    }
    return s.append('"').toString();
  }
}
