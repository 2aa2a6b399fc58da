# ruff: noqa: E501  (contract prose: one clause item per line)
"""The default agreement templates a fresh installation starts with (one per partner family).

Migration 0002 seeds these rows; `agreements.templates.ensure_default_templates` puts them back where none
exist (tests clear every table). Admins change templates in the portal, where an edit is a new
version: this text is only the starting point.

Template syntax (rendered in a Jinja sandbox, then read line by line):
  "## 中文标题 | English title"  starts a clause; clauses are numbered 第一条, 第二条, ... in order,
                                 so a clause left out by an {% if %} does not leave a gap;
  "- text"                       a numbered item of the current clause;
  any other line                 a paragraph. Blank lines are ignored.
Variables: partner (name, code, kind, kind_zh, branch), bank (name), agreement (number, version,
products (list of {code, name_zh, name_en}), products_zh, projects, stage_guarantee, brands,
onsite_staff, bank_sla_hours, partner_doc_days, effective_from, expires_on, term_months),
family, is_developer, is_dealer.
"""

from __future__ import annotations

DEFAULT_BODY = """\
{# 默认合作协议模板 / default cooperation agreement template. Edit in the portal: each save is a new version. #}
{{ bank.name }}（以下简称"甲方"）与{{ partner.name }}（以下简称"乙方"）本着平等自愿、诚实信用、互利共赢的原则，就乙方向甲方推荐个人贷款客户及相关服务事宜，经友好协商，订立本协议，以资共同遵守。
## 合作范围 | Scope of cooperation
- 本协议项下的合作业务品种为：{{ agreement.products_zh }}。乙方仅可就上述业务品种向甲方推荐客户，超出范围的推荐甲方不予受理。
{% if family == "real_estate" %}
- 乙方作为{{ partner.kind_zh }}，在其销售或居间的住房交易中，向有贷款需求的购房人介绍甲方个人住房贷款产品，并协助购房人向甲方提交贷款申请。
{% elif family == "auto" %}
- 乙方作为{{ partner.kind_zh }}，在其车辆销售过程中，向有贷款需求的购车人介绍甲方个人汽车贷款产品，并协助购车人向甲方提交贷款申请。
{% elif family == "study_abroad" %}
- 乙方作为{{ partner.kind_zh }}，在为学生及其家庭提供留学服务的过程中，介绍甲方出国留学贷款产品，并协助借款人向甲方提交贷款申请。
{% else %}
- 乙方作为{{ partner.kind_zh }}，在其业务范围内向有贷款需求的客户介绍甲方个人贷款产品，并协助客户向甲方提交贷款申请。
{% endif %}
- 甲方根据国家法律法规、监管规定及甲方信贷政策独立审查、审批贷款，是否发放贷款及贷款金额、期限、利率由甲方最终决定。乙方不得就贷款审批结果向客户作出任何承诺。
- 双方的合作通过甲方合作渠道门户（以下简称"门户"）进行。乙方通过门户提交客户推荐、上传资料、查询办理进度并确认本协议。
## 客户推荐与资料 | Referrals and documents
- 乙方推荐客户前，应当取得客户本人同意其个人信息提供给甲方用于贷款审查的书面或电子授权，并在门户中如实记录授权情况。
- 乙方应确保所提交的客户资料真实、完整、有效，不得伪造、变造、篡改任何资料，不得协助客户虚构交易背景、虚增交易价格或首付款。
- 同一客户同一业务品种在保护期内已由其他合作方推荐的，以门户中先行登记者为准；乙方对此无异议，并不得以此为由向甲方或客户主张任何费用。
- 甲方要求补充或更正资料的，乙方应在收到门户通知之日起{{ agreement.partner_doc_days }}个工作日内补齐；逾期未补齐的，甲方有权终止该笔业务的办理。
- 乙方上传的资料由甲方逐项审核，审核不通过的，甲方应在门户中注明原因。
## 服务时效 | Service levels
- 甲方承诺：对资料齐全的贷款申请，自门户显示资料齐全之时起{{ agreement.bank_sla_hours }}小时内作出审批结论（因客户原因、补充资料或依法需要外部核查所耗时间不计算在内）。
- 甲方在门户中向乙方实时展示每笔推荐的办理状态及当前等待方（甲方或乙方），并按月向乙方提供服务时效统计，包括甲方审批时长及乙方补件时长。
- 乙方承诺：按本协议第二条约定的时限补充资料，配合甲方完成面签、抵押登记、合同签署等后续手续。
- 双方同意以门户记录的时间作为计算服务时效的依据。一方连续三个月未达到上述时效要求的，另一方有权要求对方书面说明原因并提出改进措施。
## 驻场人员 | On-site bank staff
{% if agreement.onsite_staff %}
- 甲方派驻人员安排：{{ agreement.onsite_staff }}
{% else %}
- 甲方根据业务量需要，可派员到乙方营业场所驻场办公，具体人员及时间由双方另行书面确认。
{% endif %}
- 乙方应为甲方驻场人员提供必要的办公场所及便利条件。驻场人员的劳动关系、薪酬及管理均归属甲方，乙方不得指派其从事与本协议无关的工作。
- 驻场人员仅负责产品咨询、资料初审及协助受理，不代表甲方作出任何审批承诺。
{% if is_developer %}
## 阶段性担保 | Stage guarantee
- 本协议项下的合作楼盘项目为：{{ agreement.projects | join("；") if agreement.projects else "以双方另行书面确认的项目清单为准" }}。
{% if agreement.stage_guarantee %}
- 阶段性担保安排：{{ agreement.stage_guarantee }}
{% endif %}
- 乙方为购房人在甲方的个人住房贷款提供阶段性连带责任保证，保证期间自贷款发放之日起至所购房屋办妥正式抵押登记并将他项权利证书（不动产登记证明）交由甲方收执之日止。
- 保证期间内借款人未按期足额还款的，甲方有权直接要求乙方承担保证责任，乙方应在接到甲方书面通知之日起十个工作日内代为清偿。
- 乙方应按甲方要求在甲方开立保证金账户并存入保证金，保证金比例由双方另行约定。
{% elif is_dealer %}
## 合作品牌 | Brands covered
- 本协议项下的合作车辆品牌为：{{ agreement.brands | join("、") if agreement.brands else "以双方另行书面确认的品牌清单为准" }}。
- 乙方应确保所销售车辆来源合法、价格真实，并协助甲方办理车辆抵押登记手续。
{% endif %}
## 客户信息保护 | Protection of customer information
- 双方应严格遵守《中华人民共和国个人信息保护法》《中华人民共和国数据安全法》等法律法规，仅为办理本协议项下业务之目的处理客户个人信息。
- 乙方在门户中查看客户身份证件号码、手机号码等敏感信息时以脱敏方式显示；乙方不得以任何方式留存、复制、转售或向第三方提供客户信息。
- 一方发生或可能发生客户信息泄露的，应立即采取补救措施并于二十四小时内书面通知另一方。
- 本条约定在本协议终止后继续有效。
## 协议期限与终止 | Term and termination
- 本协议自{{ agreement.effective_from }}起生效，至{{ agreement.expires_on }}止。协议到期前三十日，双方可通过门户办理续签，续签协议生效后本协议同时失效。
- 乙方有下列情形之一的，甲方有权单方终止本协议，并暂停乙方在门户中的推荐权限：（一）提供虚假资料或协助客户骗取贷款；（二）向客户收取本协议未约定的费用；（三）泄露客户信息；（四）推荐客户的不良贷款率明显高于甲方同类业务平均水平且未在限期内改善。
- 本协议终止不影响终止前已推荐业务的继续办理，亦不影响双方在终止前已产生的权利义务。
## 营销合作与客户资源 | Joint marketing and customer resources
- 双方可开展联合营销，包括在乙方营业场所设置甲方宣传资料、共同举办客户活动等，宣传内容须经甲方审核。
- 对因资质或资料原因暂未获批、但具有良好还款能力的客户，甲方可将其纳入待跟进名单，在客户同意的前提下持续提供服务。
- 乙方不得以甲方名义对外发布广告或作出承诺，不得使用甲方商标、标识用于本协议以外的用途。
## 定期沟通 | Regular communication
- 双方建立定期沟通制度，原则上每季度至少召开一次业务沟通会，通报合作业务量、审批通过率、服务时效及资产质量情况。
- 甲方渠道经理为甲方在本协议项下的联系人，乙方应指定专人作为联系人，联系人变更的应及时通过门户告知对方。
## 费用与禁止行为 | Fees and prohibited conduct
- 除双方另行书面约定外，甲方不因客户推荐向乙方支付任何费用，乙方亦不得以办理甲方贷款为由向客户收取任何费用。
- 乙方及其工作人员不得向甲方工作人员提供任何形式的不正当利益。
## 违约责任 | Liability for breach
- 任何一方违反本协议约定给对方造成损失的，应承担相应赔偿责任。
- 乙方提供虚假资料导致甲方贷款发生损失的，乙方应赔偿甲方因此遭受的全部损失。
## 争议解决 | Disputes
- 因本协议引起的或与本协议有关的争议，双方应友好协商解决；协商不成的，任何一方均可向甲方所在地有管辖权的人民法院提起诉讼。
## 其他 | Miscellaneous
- 本协议编号为{{ agreement.number }}，版本为第{{ agreement.version }}版。本协议以门户生成的PDF文件为准，乙方授权管理员在门户中确认接受即视为乙方签署；门户记录确认人、确认时间、确认地址及所确认PDF文件的SHA-256摘要；持有本协议PDF文件者可在门户“协议核验”页面上传文件或输入摘要，核验其是否与甲方存档一致。
- 本协议未尽事宜，双方可另行签订补充协议，补充协议与本协议具有同等法律效力。
"""

# key, family, product (None: every product), title
DEFAULT_TEMPLATES = [
    ("real_estate", "real_estate", None, "个人住房贷款业务合作协议（房地产开发商及经纪机构）"),
    ("auto", "auto", None, "个人汽车贷款业务合作协议（汽车经销商及厂商）"),
    ("study_abroad", "study_abroad", None, "出国留学贷款业务合作协议（留学服务机构）"),
    ("retail", "retail", None, "个人消费贷款业务合作协议（零售商场）"),
    ("service", "service", None, "个人贷款业务服务合作协议（专业服务机构）"),
]
